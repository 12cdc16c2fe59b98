import { promises as dns } from 'node:dns';
import net from 'node:net';
import { buildConnector } from 'undici';
import { type EgressPolicy, isLoopbackName, normalizeHost } from '../core/egress-policy';
import { ATTEMPT_FAILURE } from '../core/http-policy';

/**
 * The egress guard at connect time (ADR-0009): every new connection resolves the host once,
 * refuses if any answer is a refused address, and dials the checked address itself — so DNS
 * rebinding, literal IPs and every pooled connection go through the same check. The TLS name
 * stays the original host.
 */

export type Lookup = (hostname: string) => Promise<{ address: string; family: number }[]>;

const systemLookup: Lookup = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

export class EgressRefusedError extends Error {
  override name = 'EgressRefusedError';
  readonly code = 'EGRESS_REFUSED';
  readonly kind = ATTEMPT_FAILURE.EgressRefused;
}

export function createGuardedConnector(opts: {
  policy: EgressPolicy;
  lookup?: Lookup;
  /** The connector that really dials; tests pass one that records instead. */
  base?: buildConnector.connector;
  timeoutMs?: number;
}): buildConnector.connector {
  const lookup = opts.lookup ?? systemLookup;
  const base = opts.base ?? buildConnector({ timeout: opts.timeoutMs ?? 10_000 });
  return (options, callback) => {
    const host = options.hostname.replace(/^\[|\]$/g, '');
    const dial = (address: string) => base({ ...options, hostname: address }, callback);
    if (opts.policy.isHostAllowlisted(host)) {
      dial(host);
      return;
    }
    if (net.isIP(host) !== 0) {
      const refused = opts.policy.refuseAddress(host);
      if (refused !== undefined) callback(new EgressRefusedError(`egress refused: ${refused}`), null);
      else dial(host);
      return;
    }
    const name = normalizeHost(host);
    if (isLoopbackName(name)) {
      callback(new EgressRefusedError(`egress refused: ${name} is a loopback name`), null);
      return;
    }
    lookup(name)
      .then((answers) => {
        const [first] = answers;
        if (first === undefined) throw new Error(`${name} has no addresses`);
        // One refused answer refuses the name: a mixed record set is how rebinding starts.
        for (const a of answers) {
          const refused = opts.policy.refuseAddress(a.address);
          if (refused !== undefined) throw new EgressRefusedError(`egress refused: ${name} resolves to ${refused}`);
        }
        dial(first.address);
      })
      .catch((err: unknown) => callback(err instanceof Error ? err : new Error(String(err)), null));
  };
}
