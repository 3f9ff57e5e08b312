// The pure parts of the live view: what an API process publishes, how the view sums the
// processes, and how a partition's due reservations are split among its SKUs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { publishFields, sumPublished, type CounterSample } from '../../src/live/counters.js';
import { splitDue } from '../../src/live/sku-state.js';

const sample = (atMs: number, skus: Record<string, [number, Record<string, number>]>) =>
  ({
    atMs,
    skus: new Map(
      Object.entries(skus).map(([sku, [unitsReserved, outcomes]]) => [
        sku,
        { unitsReserved, outcomes },
      ]),
    ),
  }) satisfies CounterSample;

describe('live counters', () => {
  it('publishes totals, outcomes and the rate since the previous publish', () => {
    const prev = sample(10_000, { a: [4, { created: 2 }] });
    const now = sample(12_000, { a: [10, { created: 5, SOLD_OUT: 3 }], b: [3, { created: 1 }] });
    assert.deepEqual(publishFields(now, prev), {
      at: '12000',
      'u:a': '10',
      'r:a': '3',
      'o:a:created': '5',
      'o:a:SOLD_OUT': '3',
      'u:b': '3',
      'r:b': '1.5',
      'o:b:created': '1',
    });
  });

  it('sums the instances: units and rates add up, refusals by code, sales are not refusals', () => {
    const one = {
      at: '1',
      'u:a': '10',
      'r:a': '2.5',
      'o:a:created': '9',
      'o:a:replayed': '1',
      'o:a:SOLD_OUT': '4',
    };
    const two = {
      at: '2',
      'u:a': '5',
      'r:a': '1.25',
      'o:a:LIMIT_EXCEEDED': '2',
      'o:a:SOLD_OUT': '1',
    };
    const sums = sumPublished([one, two, {}]);
    assert.deepEqual(sums.get('a'), {
      unitsReserved: 15,
      soldPerSecond: 3.75,
      refusals: { SOLD_OUT: 5, LIMIT_EXCEEDED: 2 },
    });
    assert.equal(sums.size, 1);
  });
});

describe('reservations due per SKU', () => {
  it('counts exactly when the partition sample holds every due reservation', () => {
    const due = ['a:o1', 'b:o2', 'a:o3', 'c:o4'];
    assert.deepEqual(
      splitDue(4, due, ['a', 'b']),
      new Map([
        ['a', 2],
        ['b', 1],
      ]),
    );
  });

  it('splits a partition beyond the sample by each SKU’s share of it', () => {
    const due = ['a:1', 'a:2', 'a:3', 'b:4'];
    assert.deepEqual(
      splitDue(400, due, ['a', 'b']),
      new Map([
        ['a', 300],
        ['b', 100],
      ]),
    );
    // A SKU alone in its partition gets the exact total however many are due.
    assert.deepEqual(splitDue(5000, ['a:1', 'a:2'], ['a']), new Map([['a', 5000]]));
  });

  it('counts none for a SKU with nothing due', () => {
    assert.deepEqual(splitDue(0, [], ['a']), new Map([['a', 0]]));
  });
});
