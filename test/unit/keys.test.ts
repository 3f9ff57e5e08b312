import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  fnv1a,
  IDEMPOTENCY_KEY_PATTERN,
  ID_PATTERN,
  KeySpace,
  ORDER_ID_PATTERN,
  orderValue,
  parseClaim,
  parseOrder,
} from '../../src/shared/keys.js';

describe('key space', () => {
  const keys = new KeySpace(16);

  it('maps a SKU to a stable partition and puts it in every hash tag', () => {
    // Published FNV-1a 32-bit test vectors: any process, in any language, agrees.
    assert.equal(fnv1a(''), 0x811c9dc5);
    assert.equal(fnv1a('a'), 0xe40c292c);
    assert.equal(fnv1a('foobar'), 0xbf9cf968);
    assert.equal(keys.partitionOf('foobar'), 0xbf9cf968 % 16);
    const k = keys.forSku('sku-1');
    const tag = `{p${String(k.partition).padStart(2, '0')}}`;
    for (const key of [k.sku, k.users, k.expiries, k.events, k.order('x')])
      assert.ok(key.includes(tag), key);
  });

  it('refuses ids that could change a key', () => {
    for (const bad of ['a{b}', 'a:b', '', 'x'.repeat(65), 'héllo', 'a b', '{p01}']) {
      assert.throws(() => keys.forSku(bad), RangeError, bad);
      assert.throws(() => keys.idempotencyClaim(bad, 'k'), RangeError, bad);
    }
    assert.throws(() => keys.idempotencyClaim('u1', 'a|b'), RangeError);
  });

  it('admits no character JSON escapes, so the purchase script can write its event as is', () => {
    const escaped = ['"', '\\', ...Array.from({ length: 32 }, (_, c) => String.fromCharCode(c))];
    escaped.push('\u007f', '\u2028', 'é');
    for (const ch of escaped) {
      assert.ok(!ID_PATTERN.test(`a${ch}b`), JSON.stringify(ch));
      assert.ok(!IDEMPOTENCY_KEY_PATTERN.test(`a${ch}b`), JSON.stringify(ch));
    }
    const id = keys.orderIdFor(3);
    assert.ok(ORDER_ID_PATTERN.test(id));
    assert.equal(parseClaim(`s|1|${id}`)?.orderId, id);
    assert.equal(parseClaim(`s|1|${id.slice(0, -1)}"`), undefined);
  });

  it("reads an order's string, and an older engine's hash of the same fields", () => {
    const o = {
      user: 'buyer_1-x',
      sku: 'SKU-9',
      quantity: 3,
      status: 'reserved',
      createdAt: 1795000000123,
      expiresAt: 1795000600123,
    };
    assert.equal(orderValue(o), 'buyer_1-x|SKU-9|3|reserved|1795000000123|1795000600123');
    assert.deepEqual(parseOrder(orderValue(o)), o);
    const hash = Object.fromEntries(Object.entries(o).map(([k, v]) => [k, String(v)]));
    assert.deepEqual(parseOrder(hash), o);
    assert.deepEqual(parseOrder({ ...hash, confirmedAt: '1795000000999' }), o);
    for (const bad of ['', 'a|b|1|reserved|1', 'a|b|1|reserved|1|2|3', '|b|1|reserved|1|2'])
      assert.equal(parseOrder(bad), undefined, bad);
    assert.equal(parseOrder({ user: 'a', sku: 'b' }), undefined);
    // A hash is held to the string's grammar, field by field (lua/includes/order.lua too).
    for (const [field, bad] of [
      ['quantity', 'x'],
      ['createdAt', '-1'],
      ['status', 'reserved1'],
      ['user', 'a|b'],
    ] as const)
      assert.equal(parseOrder({ ...hash, [field]: bad }), undefined, `${field} ${bad}`);
  });

  it('makes UUIDv7 order ids that name their partition', () => {
    for (let p = 0; p < 16; p++) {
      const id = keys.orderIdFor(p);
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(keys.partitionOfOrder(id), p);
    }
    assert.equal(keys.partitionOfOrder('not-an-id'), undefined);
    assert.equal(keys.partitionOfOrder(keys.orderIdFor(15).slice(0, -3) + '0ff'), undefined);
  });

  it('spreads SKUs over the partitions', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(keys.partitionOf(`sku-${i}`));
    assert.equal(seen.size, 16);
  });
});
