// The client address the per-address rate limit keys on: the socket's peer, or behind
// TRUSTED_PROXY_HOPS proxies the entry that many places from the right of X-Forwarded-For;
// IPv6 by its /64, so one subscriber cannot rotate addresses past the limit.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { clientAddress } from '../../src/http/client-address.js';

const req = (peer: string, forwarded?: string) =>
  ({
    socket: { remoteAddress: peer },
    headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded },
  }) as unknown as IncomingMessage;

describe('client address', () => {
  it('is the peer without trusted proxies, whatever X-Forwarded-For says', () => {
    assert.equal(clientAddress(req('203.0.113.7', '1.1.1.1'), 0), '203.0.113.7');
    assert.equal(clientAddress(req('::ffff:203.0.113.7'), 0), '203.0.113.7');
  });

  it('believes only the hops it trusts, counted from the right', () => {
    const r = req('10.0.0.1', '6.6.6.6, 198.51.100.4, 10.0.0.9');
    assert.equal(clientAddress(r, 1), '10.0.0.9');
    assert.equal(clientAddress(r, 2), '198.51.100.4');
    // Fewer entries than trusted hops: not through every proxy, so the peer.
    assert.equal(clientAddress(req('10.0.0.1', '198.51.100.4'), 2), '10.0.0.1');
    // An entry that is no address falls back to the peer.
    assert.equal(clientAddress(req('10.0.0.1', 'junk'), 1), '10.0.0.1');
  });

  it('keys IPv6 by its /64', () => {
    const a = clientAddress(req('2001:db8:1:2:3:4:5:6'), 0);
    assert.equal(a, '2001:0db8:0001:0002::/64');
    assert.equal(clientAddress(req('2001:db8:1:2::ffff'), 0), a);
    assert.equal(clientAddress(req('2001:DB8:1:2:aaaa::1'), 0), a);
    assert.notEqual(clientAddress(req('2001:db8:1:3::1'), 0), a);
    assert.equal(clientAddress(req('::1'), 0), '0000:0000:0000:0000::/64');
  });
});
