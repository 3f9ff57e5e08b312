// The client's address, for the per-address rate limit. Behind proxies the socket's peer
// is the proxy: with TRUSTED_PROXY_HOPS = n, each of the n proxies appended the address it
// saw to X-Forwarded-For, so the client is the n-th entry from the right (entries further
// left are whatever the client chose to send, and are never believed).
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** The first four groups of an IPv6 address (its /64), fully written out. */
function ipv6Prefix64(address: string): string {
  const [head = '', tail] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 tail (::1.2.3.4) counts as two groups; it is beyond the /64 anyway.
  const width = (groups: string[]) => groups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array<string>(8 - width(left) - width(right)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.padStart(4, '0'))
    .join(':')}::/64`;
}

/**
 * One key per client: IPv4-mapped IPv6 is the IPv4 address, and an IPv6 address counts as
 * its /64 (one subscriber's usual allocation), so a client cannot rotate through its own
 * addresses to escape the limit.
 */
function normalize(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const a =
    address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  const family = isIP(a);
  if (family === 4) return a;
  return family === 6 ? ipv6Prefix64(a) : undefined;
}

export function clientAddress(req: IncomingMessage, trustedProxyHops: number): string | undefined {
  const peer = normalize(req.socket.remoteAddress);
  if (trustedProxyHops === 0) return peer;
  const header = req.headers['x-forwarded-for'];
  const entries = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  // Fewer entries than trusted proxies: the request did not come through all of them.
  if (entries.length < trustedProxyHops) return peer;
  return normalize(entries[entries.length - trustedProxyHops]) ?? peer;
}
