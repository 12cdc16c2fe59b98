import { createHash, randomBytes } from 'node:crypto';
import { and, asc, eq, isNull, sql } from 'drizzle-orm';
import { apiKeys, tenants } from '../drizzle/schema';
import { TENANT_ID_PATTERN } from './config';
import type { Db, DbOrTx } from './db';

/** API keys are stored as sha256 hashes; a key is shown once, when it is created. */

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/**
 * How people name a key (in `tenants list`, and to revoke it): `key_` and the first 10 hex
 * digits of its hash. It holds none of the key's characters, so showing it costs a key none of
 * its entropy (a prefix of the key itself would: 12 characters of a 16-character key leave 4).
 * Stored in the `prefix` column for new keys; always derived from the hash when read, so keys
 * stored with an older, longer prefix get an id too.
 */
const KEY_ID = /^key_[0-9a-f]{10}$/;

function keyIdOf(keyHash: string): string {
  return `key_${keyHash.slice(0, 10)}`;
}

export function generateApiKey(): string {
  return `pk_${randomBytes(24).toString('base64url')}`;
}

async function ensureTenant(db: DbOrTx, tenantId: string): Promise<void> {
  await db.insert(tenants).values({ id: tenantId }).onConflictDoNothing();
}

/** Registers `key` for `tenantId` (idempotent: the same key twice is one row). */
export async function registerApiKey(db: DbOrTx, tenantId: string, key: string): Promise<void> {
  await ensureTenant(db, tenantId);
  const keyHash = hashApiKey(key);
  // A key registered before key ids stored its first 12 characters; replace them with the id.
  await db
    .insert(apiKeys)
    .values({ tenantId, keyHash, prefix: keyIdOf(keyHash) })
    .onConflictDoUpdate({ target: apiKeys.keyHash, set: { prefix: keyIdOf(keyHash) } });
}

/** The tenant a presented key belongs to, or undefined for an unknown or revoked key. */
export async function tenantForApiKey(db: DbOrTx, key: string): Promise<string | undefined> {
  const [row] = await db
    .select({ tenantId: apiKeys.tenantId })
    .from(apiKeys)
    .where(and(eq(apiKeys.keyHash, hashApiKey(key)), isNull(apiKeys.revokedAt)));
  return row?.tenantId;
}

/**
 * Revocations are announced on this channel (in the revoking transaction, so only once they are
 * committed); every api process listening drops its cache of verified keys at once.
 */
export const API_KEYS_CHANNEL = 'punctual_api_keys';

export class TenantError extends Error {
  override name = 'TenantError';
}

/** Creates a tenant; false when it exists already. */
export async function createTenant(db: DbOrTx, tenantId: string): Promise<boolean> {
  if (!TENANT_ID_PATTERN.test(tenantId)) {
    throw new TenantError(`tenant names must match ${TENANT_ID_PATTERN.source} (lower case, digits, _ and -)`);
  }
  const created = await db.insert(tenants).values({ id: tenantId }).onConflictDoNothing().returning({ id: tenants.id });
  return created.length === 1;
}

/** Keys whose id is `keyId`: matched on the hash, so keys stored with an older prefix match too. */
const byKeyId = (keyId: string) => sql`left(${apiKeys.keyHash}, 10) = ${keyId.slice('key_'.length)}`;

/**
 * Makes a new key for an existing tenant and returns it: the only time it exists outside the
 * caller's hands. Its id is made unique among stored keys so people can revoke by it.
 */
export async function createApiKey(db: Db, tenantId: string): Promise<{ key: string; keyId: string }> {
  const [tenant] = await db.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId));
  if (tenant === undefined) throw new TenantError(`no tenant "${tenantId}" (create it first)`);
  for (let attempt = 0; attempt < 5; attempt++) {
    const key = generateApiKey();
    const keyHash = hashApiKey(key);
    const keyId = keyIdOf(keyHash);
    const [clash] = await db.select({ id: apiKeys.id }).from(apiKeys).where(byKeyId(keyId));
    if (clash !== undefined) continue;
    await db.insert(apiKeys).values({ tenantId, keyHash, prefix: keyId });
    return { key, keyId };
  }
  throw new TenantError('could not find an unused key id; try again');
}

type RevokeResult =
  | { outcome: 'revoked'; tenantId: string; keyId: string }
  | { outcome: 'already-revoked'; tenantId: string; keyId: string; revokedAt: Date }
  | { outcome: 'not-found' }
  | { outcome: 'ambiguous'; matches: { tenantId: string; keyId: string }[] };

/**
 * Revokes the key named by `keyIdOrKey` (its id as `list` shows it, or the whole key). An id
 * shared by several live keys (possible for keys given in API_KEYS) revokes nothing: give the
 * whole key. A revoked key stays revoked even if API_KEYS still lists it.
 */
export async function revokeApiKey(db: Db, keyIdOrKey: string): Promise<RevokeResult> {
  return db.transaction(async (tx) => {
    const matches = await tx
      .select()
      .from(apiKeys)
      .where(KEY_ID.test(keyIdOrKey) ? byKeyId(keyIdOrKey) : eq(apiKeys.keyHash, hashApiKey(keyIdOrKey)))
      .for('update');
    const live = matches.filter((k) => k.revokedAt === null);
    if (live.length > 1) {
      return {
        outcome: 'ambiguous',
        matches: live.map((k) => ({ tenantId: k.tenantId, keyId: keyIdOf(k.keyHash) })),
      };
    }
    const [target] = live;
    if (target === undefined) {
      const [revoked] = matches;
      if (revoked?.revokedAt != null) {
        return {
          outcome: 'already-revoked',
          tenantId: revoked.tenantId,
          keyId: keyIdOf(revoked.keyHash),
          revokedAt: revoked.revokedAt,
        };
      }
      return { outcome: 'not-found' };
    }
    await tx
      .update(apiKeys)
      .set({ revokedAt: sql`now()` })
      .where(eq(apiKeys.id, target.id));
    await tx.execute(sql`select pg_notify(${API_KEYS_CHANNEL}, '')`);
    return { outcome: 'revoked', tenantId: target.tenantId, keyId: keyIdOf(target.keyHash) };
  });
}

interface TenantListing {
  id: string;
  createdAt: Date;
  keys: { keyId: string; createdAt: Date; revokedAt: Date | null }[];
}

/** Every tenant with the ids of its keys (never the keys, which are not stored). */
export async function listTenants(db: DbOrTx): Promise<TenantListing[]> {
  const tenantRows = await db.select().from(tenants).orderBy(asc(tenants.id));
  const keyRows = await db
    .select({
      tenantId: apiKeys.tenantId,
      keyHash: apiKeys.keyHash,
      createdAt: apiKeys.createdAt,
      revokedAt: apiKeys.revokedAt,
    })
    .from(apiKeys)
    .orderBy(asc(apiKeys.createdAt), asc(apiKeys.keyHash));
  return tenantRows.map((t) => ({
    id: t.id,
    createdAt: t.createdAt,
    keys: keyRows
      .filter((k) => k.tenantId === t.id)
      .map((k) => ({ keyId: keyIdOf(k.keyHash), createdAt: k.createdAt, revokedAt: k.revokedAt })),
  }));
}
