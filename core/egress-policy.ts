import net from 'node:net';

/**
 * Where calls may go (ADR-0009). By default nothing on loopback, private, link-local, CGNAT,
 * multicast, unspecified or reserved addresses, in any spelling: IPv6 forms that embed an IPv4
 * address (mapped, compatible, 6to4, NAT64) are judged by the address they embed. The URL parser
 * has already turned decimal, octal and hex IPv4 spellings into dotted quads. EGRESS_ALLOWLIST
 * opens exceptions by host name or CIDR.
 */

const BLOCKED_V4: [string, number, string][] = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'CGNAT'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'reserved'],
  ['192.88.99.0', 24, 'reserved'],
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'reserved'],
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'],
];

const BLOCKED_V6: [string, number, string][] = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['64:ff9b:1::', 48, 'reserved'],
  ['100::', 64, 'reserved'],
  ['2001::', 32, 'reserved'],
  ['2001:10::', 28, 'reserved'],
  ['2001:20::', 28, 'reserved'],
  ['2001:db8::', 32, 'reserved'],
  ['3fff::', 20, 'reserved'],
  ['5f00::', 16, 'reserved'],
  ['fc00::', 7, 'private'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'link-local'],
  ['ff00::', 8, 'multicast'],
];

function blockList(v4: [string, number, string][], v6: [string, number, string][]): Map<string, net.BlockList> {
  const byReason = new Map<string, net.BlockList>();
  const add = (address: string, prefix: number, reason: string, type: 'ipv4' | 'ipv6') => {
    let list = byReason.get(reason);
    if (list === undefined) byReason.set(reason, (list = new net.BlockList()));
    list.addSubnet(address, prefix, type);
  };
  for (const [a, p, r] of v4) add(a, p, r, 'ipv4');
  for (const [a, p, r] of v6) add(a, p, r, 'ipv6');
  return byReason;
}

const BLOCKED = blockList(BLOCKED_V4, BLOCKED_V6);

/** The 16 bytes of an IPv6 address (any valid textual form), or undefined. */
export function parseIpv6(text: string): number[] | undefined {
  if (net.isIPv6(text) === false) return undefined;
  let head = text;
  let tailV4: number[] = [];
  const lastColon = head.lastIndexOf(':');
  const last = head.slice(lastColon + 1);
  if (last.includes('.')) {
    tailV4 = last.split('.').map(Number);
    head = `${head.slice(0, lastColon + 1)}0:0`;
  }
  const [left = '', right] = head.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const l = groups(left);
  const r = right === undefined ? [] : groups(right);
  const words = [...l, ...Array<number>(8 - l.length - r.length).fill(0), ...r];
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff]);
  if (tailV4.length === 4) bytes.splice(12, 4, ...tailV4);
  return bytes;
}

/** The IPv4 address an IPv6 address carries inside it, for the forms that route to it. */
export function embeddedIpv4(bytes: number[]): string | undefined {
  const v4 = (from: number) => bytes.slice(from, from + 4).join('.');
  const zero = (from: number, to: number) => bytes.slice(from, to).every((b) => b === 0);
  if (zero(0, 10) && bytes[10] === 0xff && bytes[11] === 0xff) return v4(12); // ::ffff:a.b.c.d mapped
  if (zero(0, 12) && !zero(12, 16) && !(zero(12, 15) && bytes[15] === 1)) return v4(12); // ::a.b.c.d compatible
  if (bytes[0] === 0x20 && bytes[1] === 0x02) return v4(2); // 2002:AABB:CCDD::/48 6to4
  if (bytes[0] === 0 && bytes[1] === 0x64 && bytes[2] === 0xff && bytes[3] === 0x9b && zero(4, 12)) return v4(12); // 64:ff9b::/96 NAT64
  return undefined;
}

function reasonFor(address: string, type: 'ipv4' | 'ipv6'): string | undefined {
  for (const [reason, list] of BLOCKED) if (list.check(address, type)) return reason;
  return undefined;
}

export class EgressPolicy {
  private readonly hosts = new Set<string>();
  private readonly allowed = new net.BlockList();

  /** `entries`: host names and CIDRs (`10.1.2.0/24`, `fd00::/8`, a bare IP = one address). */
  constructor(entries: readonly string[]) {
    for (const raw of entries) {
      const entry = raw.trim().toLowerCase();
      if (entry === '') continue;
      const [addr = '', prefix] = entry.split('/');
      const type = net.isIPv4(addr) ? 'ipv4' : net.isIPv6(addr) ? 'ipv6' : undefined;
      if (type === undefined) {
        if (prefix !== undefined) throw new Error(`EGRESS_ALLOWLIST entry "${raw}" is not a valid CIDR`);
        this.hosts.add(normalizeHost(entry));
        continue;
      }
      const bits = prefix === undefined ? (type === 'ipv4' ? 32 : 128) : Number(prefix);
      if (!Number.isInteger(bits) || bits < 0 || bits > (type === 'ipv4' ? 32 : 128)) {
        throw new Error(`EGRESS_ALLOWLIST entry "${raw}" has an invalid prefix length`);
      }
      this.allowed.addSubnet(addr, bits, type);
    }
  }

  static parse(raw: string | undefined): EgressPolicy {
    return new EgressPolicy((raw ?? '').split(','));
  }

  isHostAllowlisted(host: string): boolean {
    return this.hosts.has(normalizeHost(host));
  }

  /** Why a call may not go to `address` (an IP literal), or undefined when it may. */
  refuseAddress(address: string): string | undefined {
    const bare = address.replace(/^\[|\]$/g, '');
    if (net.isIPv4(bare)) {
      if (this.allowed.check(bare, 'ipv4')) return undefined;
      const reason = reasonFor(bare, 'ipv4');
      return reason === undefined ? undefined : `${bare} is a ${reason} address`;
    }
    const bytes = parseIpv6(bare);
    if (bytes === undefined) return `${address} is not an IP address`;
    if (this.allowed.check(bare, 'ipv6')) return undefined;
    const inner = embeddedIpv4(bytes);
    if (inner !== undefined) {
      const innerReason = this.refuseAddress(inner);
      if (innerReason !== undefined) return `${bare} embeds ${innerReason}`;
    }
    const reason = reasonFor(bare, 'ipv6');
    return reason === undefined ? undefined : `${bare} is a ${reason} address`;
  }

  /**
   * What can be refused from the URL alone, at submit: a scheme other than http(s), userinfo,
   * a literal address that is refused, a localhost name. Names are checked again when dialled.
   */
  refuseUrl(url: URL): string | undefined {
    if (!isHttpUrl(url)) return 'only http and https URLs are allowed';
    if (url.username !== '' || url.password !== '') return 'URLs with user information are not allowed';
    const host = normalizeHost(url.hostname);
    if (this.isHostAllowlisted(host)) return undefined;
    if (net.isIP(host.replace(/^\[|\]$/g, '')) !== 0) return this.refuseAddress(host);
    if (isLoopbackName(host)) return `${host} is a loopback name`;
    return undefined;
  }
}

function isHttpUrl(url: URL): boolean {
  return url.protocol === 'http:' || url.protocol === 'https:';
}

/**
 * Why `raw` is not a URL a call can have at all (a 400 at submit, before the policy's refusals,
 * which are 422s), or undefined.
 */
export function urlShapeProblem(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be an absolute http(s) URL';
  }
  if (!isHttpUrl(url)) return 'must use http or https';
  if (url.hostname === '') return 'must name a host';
  return undefined;
}

/** `localhost` and its subdomains (RFC 6761) always mean this machine, whatever DNS says. */
export function isLoopbackName(normalizedHost: string): boolean {
  return normalizedHost === 'localhost' || normalizedHost.endsWith('.localhost');
}

export function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/\.+$/, '');
}
