// The ceiling for the purchase benchmark: a bare node:http server that runs the very same
// inventory call (the purchase script, claiming the Idempotency-Key) with no framework, no
// JWT, no validation, no metrics. The engine's API is measured as a ratio to this.
//
// With CEILING_ROUND_TRIPS=2 it takes the path the engine takes on a Redis Cluster: the
// claim as a call of its own, then the script (two round trips instead of one).
import { loadConfig } from '../src/shared/config.js';
import { Engine } from '../src/engine.js';
import { AppError } from '../src/shared/errors.js';
import { servePurchases } from './lib.js';

const engine = new Engine(loadConfig(), 'ceiling', {
  claimInScript: process.env.CEILING_ROUND_TRIPS !== '2',
});
servePurchases(
  async (p) => {
    try {
      const { order } = await engine.inventory.purchase(
        p.userId,
        p.sku,
        p.quantity,
        p.idempotencyKey,
      );
      return { status: 201, body: order };
    } catch (err) {
      const e = err instanceof AppError ? err : new AppError('INTERNAL');
      return { status: e.status, body: e.toBody() };
    }
  },
  () => engine.stop(),
);
