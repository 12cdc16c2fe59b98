import { createHmac, randomBytes } from 'node:crypto';
import { and, asc, desc, eq, gt, inArray, isNull, or, sql } from 'drizzle-orm';
import { signingSecrets } from '../drizzle/schema';
import type { Keyring, Sealed } from './crypto';
import type { DbOrTx } from './db';

/**
 * Standard Webhooks signatures: `webhook-id`, `webhook-timestamp` (unix seconds) and
 * `webhook-signature` = space-separated `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`, one
 * per active secret. The key is the base64 part of the `whsec_` secret.
 */

const SECRET_PREFIX = 'whsec_';

/**
 * At most this many secrets sign at once: each adds a signature to every request, and a tenant
 * who rotated a few hundred times would make its own requests too large for its targets (431).
 */
export const MAX_ACTIVE_SECRETS = 5;

function generateSigningSecret(): string {
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

/**
 * A new secret signs from now on. Every secret still signing keeps signing for at most
 * `graceSeconds` (one that would end sooner keeps its end), so `0` retires all of them at once,
 * a leaked one included. Beyond MAX_ACTIVE_SECRETS the oldest are retired now.
 */
export async function rotateSigningSecret(
  db: DbOrTx,
  keyring: Keyring,
  tenantId: string,
  graceSeconds: number,
  now = new Date(),
): Promise<SigningSecretView[]> {
  const until = new Date(now.getTime() + graceSeconds * 1000);
  await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`signing-secret:${tenantId}`}))`);
    await tx
      .update(signingSecrets)
      .set({ expiresAt: until })
      .where(
        and(
          eq(signingSecrets.tenantId, tenantId),
          or(isNull(signingSecrets.expiresAt), gt(signingSecrets.expiresAt, until)),
        ),
      );
    await tx
      .insert(signingSecrets)
      .values({ tenantId, secret: keyring.seal(generateSigningSecret(), contextFor(tenantId)), createdAt: now });
    const active = await tx
      .select({ id: signingSecrets.id })
      .from(signingSecrets)
      .where(
        and(
          eq(signingSecrets.tenantId, tenantId),
          or(isNull(signingSecrets.expiresAt), gt(signingSecrets.expiresAt, now)),
        ),
      )
      .orderBy(desc(signingSecrets.createdAt), desc(signingSecrets.id));
    const beyond = active.slice(MAX_ACTIVE_SECRETS).map((r) => r.id);
    if (beyond.length > 0) {
      await tx.update(signingSecrets).set({ expiresAt: now }).where(inArray(signingSecrets.id, beyond));
    }
  });
  return activeSigningSecrets(db, keyring, tenantId, now);
}
