// The DB writer's batch planner, without any service: what it skips, flags, merges,
// inserts and updates for a chunk of events against the SKU rows PostgreSQL holds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KafkaMessage } from 'kafkajs';
import { parseMessages, planBatch, type SkuRow } from '../../src/pipeline/plan.js';

const where = { topic: 't', partition: 3 };
const order = (i: number) => `0190a000-0000-7000-8000-${String(i).padStart(12, '0')}`;
let offset = 0;
function msg(e: Record<string, unknown>): KafkaMessage {
  return {
    offset: String(offset++),
    value: Buffer.from(JSON.stringify({ v: 1, at: 1_000, ...e })),
  } as KafkaMessage;
}
const reserved = (seq: number, id: number, stockAfter: number, user = 'u1') =>
  msg({
    type: 'order.reserved',
    sku: 'a',
    seq,
    delta: -1,
    stockAfter,
    suppliedAfter: 10,
    orderId: order(id),
    userId: user,
    quantity: 1,
    status: 'reserved',
    idempotencyKey: `k${id}`,
    createdAt: 1_000,
    expiresAt: 61_000,
  });
const row = (over: Partial<SkuRow> = {}): SkuRow => ({
  id: 'a',
  available: 10,
  total_supplied: 10,
  last_sequence: 0,
  paused: false,
  ...over,
});

describe('writer batch planner', () => {
  it('merges a chunk into one stock update per SKU and folds later changes into new orders', () => {
    const plan = planBatch(
      parseMessages([
        reserved(1, 1, 9),
        reserved(2, 2, 8),
        msg({
          type: 'order.cancelled',
          sku: 'a',
          seq: 3,
          delta: 1,
          stockAfter: 9,
          suppliedAfter: 10,
          orderId: order(1),
          userId: 'u1',
          quantity: 1,
          status: 'cancelled',
        }),
      ]),
      new Map([['a', row()]]),
      where,
    );
    assert.deepEqual(plan.skuUpdates, [
      { id: 'a', available: 9, supplied: 10, last: 3, paused: false },
    ]);
    assert.deepEqual(
      plan.inserts.map((o) => [o.id, o.status, o.seq]),
      [
        [order(1), 'cancelled', 3],
        [order(2), 'reserved', 2],
      ],
    );
    assert.deepEqual(plan.updates, []);
    assert.equal(plan.applied, 3);
    assert.deepEqual(plan.anomalies, []);
    assert.deepEqual(plan.drifts, []);
  });

  it('skips what PostgreSQL has (duplicates) and flags a gap without stopping', () => {
    const plan = planBatch(
      parseMessages([reserved(1, 1, 9), reserved(2, 2, 8), reserved(5, 3, 7)]),
      new Map([['a', row({ available: 9, last_sequence: 1 })]]),
      where,
    );
    assert.equal(plan.duplicates, 1);
    assert.equal(plan.applied, 2);
    assert.deepEqual(
      plan.anomalies.map((a) => [a.kind, a.reason]),
      [['GAP', 'expected sequence 3, got 5']],
    );
    assert.equal(plan.skuUpdates[0]!.last, 5);
  });

  it('raises DRIFT when PostgreSQL stock after an event differs from the stock Redis reported', () => {
    const plan = planBatch(parseMessages([reserved(1, 1, 4)]), new Map([['a', row()]]), where);
    assert.equal(plan.drifts.length, 1);
    assert.equal(plan.drifts[0]!.kind, 'DRIFT');
    assert.equal(plan.drifts[0]!.redisAvailable, 4);
    assert.equal(plan.drifts[0]!.dbAvailable, 9);
  });

  it('never takes stock below zero: a CONFLICT, the sequence still moves', () => {
    const plan = planBatch(
      parseMessages([reserved(1, 1, 0)]),
      new Map([['a', row({ available: 0 })]]),
      where,
    );
    assert.deepEqual(
      plan.anomalies.map((a) => a.kind),
      ['CONFLICT'],
    );
    assert.deepEqual(plan.skuUpdates, [
      { id: 'a', available: 0, supplied: 10, last: 1, paused: false },
    ]);
  });

  it('parks unreadable messages and events of unknown SKUs, and applies the rest', () => {
    const bad = { offset: '77', value: Buffer.from('{"v":1,"type":"nope"}') } as KafkaMessage;
    const plan = planBatch(parseMessages([bad, reserved(1, 1, 9)]), new Map(), where);
    assert.deepEqual(
      plan.anomalies.map((a) => [a.kind, a.offset]),
      [
        ['UNREADABLE', '77'],
        ['UNKNOWN_SKU', plan.anomalies[1]!.offset],
      ],
    );
    assert.equal(plan.applied, 0);
  });

  it('follows pause and resume', () => {
    const plan = planBatch(
      parseMessages([
        msg({ type: 'sku.paused', sku: 'a', seq: 1, delta: 0, stockAfter: 10, suppliedAfter: 10 }),
      ]),
      new Map([['a', row()]]),
      where,
    );
    assert.equal(plan.skuUpdates[0]!.paused, true);
  });
});
