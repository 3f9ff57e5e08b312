// The reference model on its own: it must keep the invariants it is used to check.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Model } from '../model/model.js';

describe('reference model', () => {
  it('sells every unit once, holds limits, and gives units back exactly once', () => {
    const m = new Model();
    assert.equal(m.createSku('a', 3, 2, 1000).status, 201);
    assert.equal(m.createSku('a', 3, 2, 1000).status, 201, 'the same definition: replayed');
    assert.equal(m.createSku('a', 4, 2, 1000).code, 'SKU_EXISTS');
    assert.equal(m.buy('u1', 'a', 2, 'k1').status, 201);
    m.accept('u1', 'a', 2, 'k1', 'o1', 10_000);
    assert.deepEqual(m.buy('u1', 'a', 2, 'k1').order, {
      orderId: 'o1',
      status: 'reserved',
      replayed: true,
    });
    assert.equal(m.buy('u1', 'a', 1, 'k1').code, 'IDEMPOTENCY_KEY_REUSED');
    assert.equal(m.buy('u1', 'a', 1, 'k2').code, 'LIMIT_EXCEEDED');
    assert.equal(m.buy('u2', 'a', 2, 'k3').code, 'SOLD_OUT');
    assert.equal(m.buy('u2', 'zz', 1, 'k4').code, 'SKU_NOT_FOUND');
    assert.equal(m.cancel('u2', 'o1').code, 'ORDER_NOT_FOUND');
    assert.equal(m.cancel('u1', 'o1').status, 200);
    assert.equal(m.cancel('u1', 'o1').status, 200, 'idempotent');
    assert.equal(m.skus.get('a')!.available, 3, 'units back once');
    assert.equal(m.confirm('u1', 'o1', 0).code, 'ORDER_NOT_CONFIRMABLE');
    assert.deepEqual(m.check(), []);
  });

  it('knows when the clock decides, and expires what is certainly due', () => {
    const m = new Model();
    m.createSku('a', 1, 1, 1000);
    m.buy('u', 'a', 1, 'k');
    m.accept('u', 'a', 1, 'k', 'o', 5000);
    const o = m.orders.get('o')!;
    assert.equal(m.expiry(o, 4000), 'live');
    assert.equal(m.expiry(o, 5500), 'unsure');
    assert.equal(m.expiry(o, 9000), 'expired');
    m.sweep(9000);
    assert.equal(o.status, 'expired');
    assert.equal(m.confirm('u', 'o', 9000).code, 'ORDER_EXPIRED');
    assert.equal(m.skus.get('a')!.seq, 2);
    assert.deepEqual(m.check(), []);
  });

  it('a paused SKU holds its due reservations; they expire only once it resumes', () => {
    const m = new Model();
    m.createSku('a', 1, 1, 1000);
    m.buy('u', 'a', 1, 'k');
    m.accept('u', 'a', 1, 'k', 'o', 5000);
    m.setPaused('a', true);
    const o = m.orders.get('o')!;
    assert.equal(m.expiry(o, 5100), 'unsure');
    assert.equal(m.expiry(o, 9000), 'held');
    m.sweep(9000);
    assert.equal(o.status, 'reserved', 'the sweeper returns nothing while paused');
    assert.equal(m.skus.get('a')!.available, 0);
    assert.equal(m.cancel('u', 'o').code, 'SKU_UNAVAILABLE');
    assert.equal(m.confirm('u', 'o', 9000).code, 'ORDER_EXPIRED', 'past its expiry all the same');
    m.setPaused('a', false);
    m.sweepable('a', 10_000);
    assert.equal(m.expiry(o, 10_500), 'unsure', 'the sweeper needs its slack after the resume');
    m.sweep(12_000);
    assert.equal(o.status, 'expired');
    assert.equal(m.skus.get('a')!.available, 1);
    assert.deepEqual(m.check(), []);
  });

  it('pauses refuse changes; a repair adds a pause and a resume; lost Redis forgets idle claims', () => {
    const m = new Model();
    m.createSku('a', 5, 5, 1000);
    m.buy('u', 'a', 1, 'idle'); // refused later, claim stays
    m.setPaused('a', true);
    assert.equal(m.buy('u', 'a', 1, 'k').code, 'SKU_UNAVAILABLE');
    assert.equal(m.restock('a', 1).code, 'SKU_UNAVAILABLE');
    m.setPaused('a', false);
    m.repair('a');
    assert.equal(m.skus.get('a')!.seq, 4);
    m.loseRedisAfterDrain();
    assert.equal(m.claims.size, 0);
    assert.equal(m.buy('u', 'a', 2, 'idle').status, 201, 'the forgotten claim binds nothing');
  });
});
