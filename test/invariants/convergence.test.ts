// Convergence: 5,000 purchases, cancels, confirmations and expiries across 20 SKUs; once
// the pipeline drains, PostgreSQL equals Redis per SKU (available, supplied, sequence) and
// holds exactly the accepted orders with their final statuses.
import { after, before, describe, it } from 'node:test';
import { startEngine, type RunningApi } from '../helpers.js';
import { convergenceScenario } from './convergence-scenario.js';

describe('convergence through the pipeline', () => {
  let api: RunningApi;
  before(async () => {
    api = await startEngine(['api', 'sweeper', 'relay', 'writer'], { SWEEP_INTERVAL_MS: '200' });
  });
  after(() => api.stop());

  it('5,000 operations over 20 SKUs; PostgreSQL equals Redis after draining', () =>
    convergenceScenario(api));
});
