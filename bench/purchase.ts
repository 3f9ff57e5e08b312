// Purchase throughput of the engine's API as a ratio to a bare node:http server running
// the same inventory call (the ceiling), measured in one run on one machine. Also runs the
// same handler through express's router (PURCHASE_FAST_PATH=false), the "before".
import { randomBytes } from 'node:crypto';
import type { Engine } from '../src/engine.js';
import { fmt, load, startServer, tokens, type LoadResult } from './lib.js';

export interface PurchaseVariant {
  name: string;
  script: string;
  env: Record<string, string>;
  args?: string[];
  /** The ceiling takes the user in a header; the engine takes a JWT. */
  auth: 'jwt' | 'header';
}

export const VARIANTS: PurchaseVariant[] = [
  {
    name: 'ceiling: bare node:http',
    script: 'dist/bench/ceiling-server.js',
    env: {},
    auth: 'header',
  },
  {
    name: 'engine API, via express router',
    script: 'dist/src/main.js',
    env: { PURCHASE_FAST_PATH: 'false', LOG_LEVEL: 'info' },
    args: ['api'],
    auth: 'jwt',
  },
  {
    name: 'engine API',
    script: 'dist/src/main.js',
    env: { LOG_LEVEL: 'info' },
    args: ['api'],
    auth: 'jwt',
  },
];

export async function purchaseBench(
  engine: Engine,
  opts: { durationS: number; connections: number; users?: number },
) {
  const users = Array.from({ length: opts.users ?? 5000 }, (_, i) => `bu${i}`);
  const jwts = await tokens(engine.cfg.JWT_SECRET, users);
  const results: { variant: string; result: LoadResult }[] = [];
  for (const v of VARIANTS) {
    const sku = `bench-${randomBytes(4).toString('hex')}`;
    await engine.inventory.createSku({ sku, name: sku, stock: 10_000_000, perUserLimit: 100_000 });
    const server = await startServer(v.script, { ...v.env, PORT: '0' }, v.args);
    let n = 0;
    const next = () => {
      const u = n++ % users.length;
      return {
        headers: {
          'content-type': 'application/json',
          'idempotency-key': `${sku}-${n}`,
          ...(v.auth === 'jwt' ? { authorization: `Bearer ${jwts[u]}` } : { 'x-user': users[u]! }),
        },
        body: '{"quantity":1}',
      };
    };
    try {
      // Warm-up: JIT, connection pools, the token cache.
      await load({
        url: server.url,
        path: `/v1/skus/${sku}/purchases`,
        connections: opts.connections,
        durationS: 2,
        next,
      });
      const result = await load({
        url: server.url,
        path: `/v1/skus/${sku}/purchases`,
        connections: opts.connections,
        durationS: opts.durationS,
        next,
      });
      results.push({ variant: v.name, result });
      process.stderr.write(
        `  ${v.name}: ${fmt(result.rps)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms ${JSON.stringify(result.statusCounts)}\n`,
      );
    } finally {
      await server.stop();
    }
  }
  return results;
}

export function purchaseTable(results: { variant: string; result: LoadResult }[]): string {
  const ceiling = results[0]!.result.rps;
  const rows = results.map(
    ({ variant, result: r }) =>
      `| ${variant} | ${fmt(r.rps)} | ${fmt(r.rps / ceiling, 2)} | ${r.p50} | ${r.p99} | ${r.p999} | ${Object.entries(
        r.statusCounts,
      )
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')} |`,
  );
  return [
    '| server | req/s | ratio to ceiling | p50 ms | p99 ms | p99.9 ms | statuses |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}
