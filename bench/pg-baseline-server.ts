// The design most teams start with, as a baseline: every purchase is one PostgreSQL
// transaction (a conditional UPDATE of the SKU row, then an INSERT of the order), behind a
// bare node:http server. Tables are the bench's own (bench_pg_*), made by bench/scenarios.ts.
import { createServer } from 'node:http';
import pg from 'pg';
import { loadConfig } from '../src/config/index.js';
import { serve } from './lib.js';

const cfg = loadConfig();
const pool = new pg.Pool({ connectionString: cfg.DATABASE_URL, max: 50 });
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const sku = (req.url ?? '').split('/')[3] ?? '';
    const { quantity } = JSON.parse(Buffer.concat(chunks).toString()) as { quantity: number };
    void (async () => {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const r = await client.query(
          'UPDATE bench_pg_skus SET available = available - $2 WHERE id = $1 AND available >= $2 RETURNING available',
          [sku, quantity],
        );
        if (r.rowCount === 0) {
          await client.query('ROLLBACK');
          res
            .writeHead(409, { 'content-type': 'application/json' })
            .end('{"error":{"code":"SOLD_OUT"}}');
          return;
        }
        const o = await client.query(
          'INSERT INTO bench_pg_orders (sku_id, user_id, quantity, idempotency_key) VALUES ($1, $2, $3, $4) RETURNING id',
          [sku, String(req.headers['x-user']), quantity, String(req.headers['idempotency-key'])],
        );
        await client.query('COMMIT');
        res
          .writeHead(201, { 'content-type': 'application/json' })
          .end(JSON.stringify({ orderId: String(o.rows[0].id), sku, quantity }));
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        res.writeHead(500).end(String(err));
      } finally {
        client.release();
      }
    })();
  });
});
serve(server, () => pool.end());
