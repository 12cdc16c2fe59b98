import { createHmac, randomBytes } from 'node:crypto';
import { and, asc, eq, gt, isNull, or, sql } from 'drizzle-orm';
import { signingSecrets } from '../drizzle/schema';
import type { Keyring, Sealed } from './crypto';
import type { DbOrTx } from './db';

/**
 * Standard Webhooks signatures: `webhook-id`, `webhook-timestamp` (unix seconds) and
 * `webhook-signature` = space-separated `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`, one
 * per active secret. The key is the base64 part of the `whsec_` secret.
 */

export const SECRET_PREFIX = 'whsec_';

export function generateSigningSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
}

export function signatureHeaders(
  secrets: readonly string[],
  messageId: string,
  timestampSeconds: number,
  body: string,
): Record<string, string> {
  const content = `${messageId}.${timestampSeconds}.${body}`;
  const signatures = secrets.map((secret) => {
    const key = Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
    return `v1,${createHmac('sha256', key).update(content, 'utf8').digest('base64')}`;
  });
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': signatures.join(' '),
  };
}

export interface SigningSecretView {
  id: string;
  secret: string;
  createdAt: string;
  expiresAt: string | null;
}

const contextFor = (tenantId: string) => `signing-secret/${tenantId}`;

/** The tenant's secrets that still sign, oldest first; creates the first one on demand. */
export async function activeSigningSecrets(
  db: DbOrTx,
  keyring: Keyring,
  tenantId: string,
  now = new Date(),
): Promise<SigningSecretView[]> {
  const select = () =>
    db
      .select()
      .from(signingSecrets)
      .where(
        and(
          eq(signingSecrets.tenantId, tenantId),
          or(isNull(signingSecrets.expiresAt), gt(signingSecrets.expiresAt, now)),
        ),
      )
      .orderBy(asc(signingSecrets.createdAt));
  let rows = await select();
  if (rows.length === 0) {
    // Serialize first creation per tenant so concurrent callers agree on one secret.
    await db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`signing-secret:${tenantId}`}))`);
      const [existing] = await tx
        .select({ id: signingSecrets.id })
        .from(signingSecrets)
        .where(and(eq(signingSecrets.tenantId, tenantId), isNull(signingSecrets.expiresAt)));
      if (existing === undefined) {
        await tx
          .insert(signingSecrets)
          .values({ tenantId, secret: keyring.seal(generateSigningSecret(), contextFor(tenantId)) });
      }
    });
    rows = await select();
  }
  return rows.map((r) => ({
    id: r.id,
    secret: keyring.open<string>(r.secret as Sealed, contextFor(tenantId)),
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt?.toISOString() ?? null,
  }));
}

/** A new secret signs from now on; the current ones keep signing for `graceSeconds`. */
export async function rotateSigningSecret(
  db: DbOrTx,
  keyring: Keyring,
  tenantId: string,
  graceSeconds: number,
  now = new Date(),
): Promise<SigningSecretView[]> {
  await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`signing-secret:${tenantId}`}))`);
    await tx
      .update(signingSecrets)
      .set({ expiresAt: new Date(now.getTime() + graceSeconds * 1000) })
      .where(and(eq(signingSecrets.tenantId, tenantId), isNull(signingSecrets.expiresAt)));
    await tx
      .insert(signingSecrets)
      .values({ tenantId, secret: keyring.seal(generateSigningSecret(), contextFor(tenantId)), createdAt: now });
  });
  return activeSigningSecrets(db, keyring, tenantId, now);
}
