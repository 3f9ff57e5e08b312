// Race: 2,000 concurrent purchases from 1,000 users (limit 1) plus same-key retries, spread
// over two API instances that share Redis. Invariants: no oversell, conservation,
// per-user limit, idempotent retries.
import { after, before, describe, it } from 'node:test';
import { startApi, type RunningApi } from '../helpers.js';
import { raceScenario } from './race-scenario.js';

describe('purchase race', () => {
  let a: RunningApi;
  let b: RunningApi;
  before(async () => {
    a = await startApi();
    b = await startApi();
  });
  after(async () => {
    await a.stop();
    await b.stop();
  });

  it('stock 100, 2,000 purchases from 1,000 users, limit 1, with retries', () =>
    raceScenario(a, b));
});
