// The ceiling for the purchase benchmark: a bare node:http server that runs the very same
// inventory call (idempotency claim + purchase script) with no framework, no JWT, no
// validation, no metrics. The engine's API is measured as a ratio to this.
import { createServer } from 'node:http';
import { loadConfig } from '../src/config/index.js';
import { serve } from './lib.js';
import { Engine } from '../src/engine.js';
import { AppError } from '../src/errors.js';

const engine = new Engine(loadConfig(), 'ceiling');
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const sku = (req.url ?? '').split('/')[3] ?? '';
    const { quantity } = JSON.parse(Buffer.concat(chunks).toString()) as { quantity: number };
    engine.inventory
      .purchase(
        String(req.headers['x-user']),
        sku,
        quantity,
        String(req.headers['idempotency-key']),
      )
      .then(({ order }) => {
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify(order));
      })
      .catch((err: unknown) => {
        const e = err instanceof AppError ? err : new AppError('INTERNAL');
        res.writeHead(e.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(e.toBody()));
      });
  });
});
serve(server, () => engine.stop());
