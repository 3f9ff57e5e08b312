// The design most teams start with, as a baseline: every purchase is one PostgreSQL
// transaction (a conditional UPDATE of the SKU row, then an INSERT of the order), behind a
// bare node:http server. Tables are the bench's own (bench_pg_*), made by bench/scenarios.ts.
import pg from 'pg';
import { loadConfig } from '../src/shared/config.js';
import { servePurchases } from './lib.js';

const pool = new pg.Pool({ connectionString: loadConfig().DATABASE_URL, max: 50 });
servePurchases(
  async (p) => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const r = await client.query(
        'UPDATE bench_pg_skus SET available = available - $2 WHERE id = $1 AND available >= $2 RETURNING available',
        [p.sku, p.quantity],
      );
      if (r.rowCount === 0) {
        await client.query('ROLLBACK');
        return { status: 409, body: { error: { code: 'SOLD_OUT' } } };
      }
      const o = await client.query(
        'INSERT INTO bench_pg_orders (sku_id, user_id, quantity, idempotency_key) VALUES ($1, $2, $3, $4) RETURNING id',
        [p.sku, p.userId, p.quantity, p.idempotencyKey],
      );
      await client.query('COMMIT');
      return {
        status: 201,
        body: { orderId: String(o.rows[0].id), sku: p.sku, quantity: p.quantity },
      };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      return { status: 500, body: { error: { code: 'INTERNAL', message: String(err) } } };
    } finally {
      client.release();
    }
  },
  () => pool.end(),
);
