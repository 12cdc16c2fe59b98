import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';

/**
 * Secrets at rest (ADR-0008): what a call needs to run later but people must not see — secret
 * header values and the request body — is sealed with AES-256-GCM under ENCRYPTION_KEY before
 * it reaches the event store. The key id travels with each sealed value so a wrong key is
 * reported as such, not as corrupt data.
 */

export interface Sealed {
  /** Key id: first 8 hex digits of sha256(key). */
  kid: string;
  /** base64(iv ‖ ciphertext ‖ tag). */
  data: string;
}

class EncryptionKeyError extends Error {
  override name = 'EncryptionKeyError';
}

export class Keyring {
  readonly kid: string;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new EncryptionKeyError('ENCRYPTION_KEY must be 32 bytes, base64-encoded');
    this.kid = createHash('sha256').update(key).digest('hex').slice(0, 8);
  }

  static fromBase64(value: string): Keyring {
    return new Keyring(Buffer.from(value, 'base64'));
  }

  static generateBase64(): string {
    return randomBytes(32).toString('base64');
  }

  seal(value: unknown, context: string): Sealed {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    // The context (e.g. the call's stream id) is authenticated: a sealed value moved to another
    // call does not open.
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
    return { kid: this.kid, data: Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64') };
  }

  open<T>(sealed: Sealed, context: string): T {
    if (sealed.kid !== this.kid) {
      throw new EncryptionKeyError(`value was sealed with key ${sealed.kid}, but ENCRYPTION_KEY is key ${this.kid}`);
    }
    const raw = Buffer.from(sealed.data, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    const plain = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as T;
  }

  /** Keyed hash: comparable like a digest, but useless for guessing secrets without the key. */
  mac(value: string): string {
    return createHmac('sha256', this.key).update(value, 'utf8').digest('hex');
  }
}
