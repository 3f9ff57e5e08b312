// The ceiling for the purchase benchmark: a bare node:http server that runs the very same
// inventory call (idempotency claim + purchase script) with no framework, no JWT, no
// validation, no metrics. The engine's API is measured as a ratio to this.
import { loadConfig } from '../src/shared/config.js';
import { Engine } from '../src/engine.js';
import { AppError } from '../src/shared/errors.js';
import { servePurchases } from './lib.js';

const engine = new Engine(loadConfig(), 'ceiling');
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
