import { createHash, randomBytes } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import { apiKeys, tenants } from '../drizzle/schema';
import type { DbOrTx } from './db';

/** API keys are stored as sha256 hashes; a key is shown once, when it is created. */

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export const KEY_PREFIX_LENGTH = 12;

export function generateApiKey(): string {
  return `pk_${randomBytes(24).toString('base64url')}`;
}

export async function ensureTenant(db: DbOrTx, tenantId: string): Promise<void> {
  await db.insert(tenants).values({ id: tenantId }).onConflictDoNothing();
}

/** Registers `key` for `tenantId` (idempotent: the same key twice is one row). */
export async function registerApiKey(db: DbOrTx, tenantId: string, key: string): Promise<void> {
  await ensureTenant(db, tenantId);
  await db
    .insert(apiKeys)
    .values({ tenantId, keyHash: hashApiKey(key), prefix: key.slice(0, KEY_PREFIX_LENGTH) })
    .onConflictDoNothing();
}

/** The tenant a presented key belongs to, or undefined for an unknown or revoked key. */
export async function tenantForApiKey(db: DbOrTx, key: string): Promise<string | undefined> {
  const [row] = await db
    .select({ tenantId: apiKeys.tenantId })
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, hashApiKey(key)), isNull(apiKeys.revokedAt)));
  return row?.tenantId;
}
