// Load scenarios through autocannon against the engine's API (with the relay and writer
// running as another process), each followed by an invariant check; in the same run the
// bare node:http ceiling and a PostgreSQL-only baseline take the hot-SKU load.
import { randomBytes } from 'node:crypto';
import type { Engine } from '../src/engine.js';
import { compareSkus } from '../src/reconcile/compare.js';
import {
  fmt,
  load,
  PG_BASELINE_TABLES,
  startServer,
  tokens,
  type LoadResult,
  type Server,
} from './lib.js';

export interface ScenarioResult {
  scenario: string;
  server: string;
  result: LoadResult;
  outcomes: Record<string, number>;
  /** The engine's purchases per purchase-script call over the load (its /metrics). */
  purchasesPerScriptCall?: number;
  invariants: { name: string; ok: boolean; detail: string }[];
}

const hex = () => randomBytes(3).toString('hex');

/** The purchases the engine's script calls decided so far, and the calls (its /metrics). */
async function batchTotals(url: string): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return {
    sum: read('flashsale_purchase_batch_size_sum'),
    count: read('flashsale_purchase_batch_size_count'),
  };
}

interface Ctx {
  engine: Engine;
  jwts: string[];
  users: string[];
  durationS: number;
  connections: number;
}

type Next = () => { headers: Record<string, string>; body: string; path: string; meta?: unknown };

async function run(
  ctx: Ctx,
  url: string,
  next: Next,
  onOk?: (status: number, body: string, meta: unknown) => void,
) {
  const outcomes: Record<string, number> = {};
  const result = await load({
    url,
    path: '/',
    connections: ctx.connections,
    durationS: ctx.durationS,
    next,
    onResponse: (status, body, meta) => {
      let label = String(status);
      if (status >= 400) {
        try {
          label = (JSON.parse(body) as { error: { code: string } }).error.code;
        } catch {
          // not JSON
        }
      } else if (status === 201 || status === 200) label = status === 201 ? 'created' : 'ok';
      outcomes[label] = (outcomes[label] ?? 0) + 1;
      onOk?.(status, body, meta);
    },
  });
  return { result, outcomes };
}

/** After the pipeline drains: no oversell, conservation, limits, Redis equals PostgreSQL. */
async function checkInvariants(engine: Engine, skus: string[], limit: number) {
  const deadline = Date.now() + 120_000;
  let cmp = await compareSkus(engine.redis, engine.db, engine.keys, skus);
  while (cmp.some((c) => c.lag !== 0) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    cmp = await compareSkus(engine.redis, engine.db, engine.keys, skus);
  }
  let maxHeld = 0;
  let conserved = true;
  for (const sku of skus) {
    const k = engine.keys.forSku(sku);
    const held = Object.values(await engine.redis.hgetall(k.users)).map(Number);
    maxHeld = Math.max(maxHeld, ...held, 0);
    const c = cmp.find((x) => x.sku === sku);
    if (!c?.redis || c.redis.available + held.reduce((s, n) => s + n, 0) !== c.redis.supplied)
      conserved = false;
  }
  return [
    {
      name: 'no oversell',
      ok: cmp.every((c) => (c.redis?.available ?? -1) >= 0 && c.db.available >= 0),
      detail: `min available ${Math.min(...cmp.map((c) => c.redis?.available ?? -1))}`,
    },
    {
      name: 'conservation (Redis and PostgreSQL)',
      ok: conserved && cmp.every((c) => c.conservationGap === 0),
      detail: `${skus.length} SKUs`,
    },
    {
      name: 'Redis equals PostgreSQL',
      ok: cmp.every((c) => c.lag === 0 && c.drift === 0),
      detail: `max lag ${Math.max(...cmp.map((c) => c.lag ?? 0))}`,
    },
    {
      name: 'no user over the limit',
      ok: maxHeld <= limit,
      detail: `max held ${maxHeld}, limit ${limit}`,
    },
  ];
}

export async function scenarios(
  engine: Engine,
  opts: { durationS: number; connections: number },
): Promise<ScenarioResult[]> {
  const users = Array.from({ length: 5000 }, (_, i) => `sc${i}`);
  const ctx: Ctx = { engine, users, jwts: await tokens(engine.cfg.JWT_SECRET, users), ...opts };
  const results: ScenarioResult[] = [];
  const started: Server[] = [];
  const say = (r: ScenarioResult) =>
    process.stderr.write(
      `  ${r.scenario} on ${r.server}: ${fmt(r.result.rps)} req/s, p50 ${r.result.p50} ms, p99 ${r.result.p99} ms ${JSON.stringify(r.outcomes)} ${r.invariants.every((i) => i.ok) ? 'invariants ok' : 'INVARIANT FAILED'}\n`,
    );
  const create = async (sku: string, stock: number, limit: number) =>
    engine.inventory.createSku({ sku, name: sku, stock, perUserLimit: limit });
  let n = 0;
  const purchase = (sku: string, u: number, key: string, jwt = true) => ({
    path: `/v1/skus/${sku}/purchases`,
    headers: {
      'content-type': 'application/json',
      'idempotency-key': key,
      ...(jwt ? { authorization: `Bearer ${ctx.jwts[u]}` } : { 'x-user': users[u]! }),
    },
    body: '{"quantity":1}',
  });

  try {
    // The relay and writer run throughout: the ceiling's purchases append the same events,
    // and the pipeline's share of the machine must weigh on every server alike.
    started.push(
      await startServer('dist/src/main.js', { PORT: '0', LOG_LEVEL: 'info' }, ['relay', 'writer']),
    );
    const ceiling = await startServer('dist/bench/ceiling-server.js', { PORT: '0' });
    started.push(ceiling);
    {
      const sku = `hot-c-${hex()}`;
      await create(sku, 10_000_000, 100_000);
      const { result, outcomes } = await run(ctx, ceiling.url, () =>
        purchase(sku, n % users.length, `${sku}-${n++}`, false),
      );
      results.push({
        scenario: 'hot SKU',
        server: 'ceiling: bare node:http',
        result,
        outcomes,
        invariants: [],
      });
      say(results[results.length - 1]!);
    }
    await ceiling.stop();

    for (const sql of PG_BASELINE_TABLES) await engine.db.$executeRawUnsafe(sql);
    const pgServer = await startServer('dist/bench/pg-baseline-server.js', { PORT: '0' });
    started.push(pgServer);
    {
      const sku = `hot-pg-${hex()}`;
      await engine.db
        .$executeRaw`INSERT INTO bench_pg_skus (id, available) VALUES (${sku}, 10000000)`;
      const { result, outcomes } = await run(ctx, pgServer.url, () =>
        purchase(sku, n % users.length, `${sku}-${n++}`, false),
      );
      const [row] = await engine.db.$queryRaw<
        { available: number; orders: bigint }[]
      >`SELECT available, (SELECT count(*) FROM bench_pg_orders WHERE sku_id = ${sku}) AS orders FROM bench_pg_skus WHERE id = ${sku}`;
      const ok =
        row !== undefined &&
        row.available >= 0 &&
        Number(row.orders) === 10_000_000 - row.available;
      results.push({
        scenario: 'hot SKU',
        server: 'PostgreSQL only (row update + insert)',
        result,
        outcomes,
        invariants: [{ name: 'no oversell, conservation', ok, detail: `${row?.orders} orders` }],
      });
      say(results[results.length - 1]!);
    }
    await pgServer.stop();

    const api = await startServer('dist/src/main.js', { PORT: '0', LOG_LEVEL: 'info' }, [
      'api',
      'sweeper',
    ]);
    started.push(api);
    started.push(
      await startServer('dist/src/main.js', { PORT: '0', LOG_LEVEL: 'info' }, ['relay', 'writer']),
    );
    const engineRun = async (
      scenario: string,
      skus: string[],
      limit: number,
      next: Next,
      onOk?: (s: number, b: string, m: unknown) => void,
    ) => {
      const before = await batchTotals(api.url);
      const { result, outcomes } = await run(ctx, api.url, next, onOk);
      const after = await batchTotals(api.url);
      const calls = after.count - before.count;
      const r = {
        scenario,
        server: 'engine',
        result,
        outcomes,
        ...(calls > 0 ? { purchasesPerScriptCall: (after.sum - before.sum) / calls } : {}),
        invariants: await checkInvariants(engine, skus, limit),
      };
      results.push(r);
      say(r);
    };

    {
      const sku = `hot-${hex()}`;
      await create(sku, 10_000_000, 100_000);
      await engineRun('hot SKU', [sku], 100_000, () =>
        purchase(sku, n % users.length, `${sku}-${n++}`),
      );
    }
    {
      const skus = Array.from({ length: 100 }, () => `many-${hex()}`);
      for (const sku of skus) await create(sku, 100_000, 100_000);
      await engineRun('100 SKUs', skus, 100_000, () =>
        purchase(skus[n % skus.length]!, n % users.length, `${skus[0]}-${n++}`),
      );
    }
    {
      const sku = `storm-${hex()}`;
      await create(sku, 500, 1);
      await engineRun('sold-out storm', [sku], 1, () =>
        purchase(sku, n % users.length, `${sku}-${n++}`),
      );
    }
    {
      const sku = `retry-${hex()}`;
      await create(sku, 10_000_000, 100_000);
      const sent: { u: number; key: string }[] = [];
      await engineRun('retry storm (80% same-key retries)', [sku], 100_000, () => {
        n += 1;
        const again =
          sent.length > 50 && n % 5 !== 0
            ? sent[Math.floor(Math.random() * sent.length)]!
            : undefined;
        const s = again ?? { u: n % users.length, key: `${sku}-${n}` };
        if (!again) sent.push(s);
        return purchase(sku, s.u, s.key);
      });
    }
    {
      const sku = `mixed-${hex()}`;
      await create(sku, 10_000_000, 100_000);
      const toCancel: { id: string; u: number }[] = [];
      await engineRun(
        'mixed purchases and cancels',
        [sku],
        100_000,
        () => {
          n += 1;
          const c = n % 3 === 0 ? toCancel.shift() : undefined;
          if (c)
            return {
              path: `/v1/orders/${c.id}/cancel`,
              headers: { authorization: `Bearer ${ctx.jwts[c.u]}` },
              body: '',
            };
          const u = n % users.length;
          return { ...purchase(sku, u, `${sku}-${n}`), meta: u };
        },
        (status, body, meta) => {
          if (status === 201 && typeof meta === 'number')
            toCancel.push({ id: (JSON.parse(body) as { orderId: string }).orderId, u: meta });
        },
      );
    }
  } finally {
    for (const s of started.reverse()) await s.stop();
  }
  return results;
}

export function scenarioTable(results: ScenarioResult[]): string {
  const ceiling = results.find((r) => r.server.startsWith('ceiling'))?.result.rps ?? NaN;
  const rows = results.map(
    (r) =>
      `| ${r.scenario} | ${r.server} | ${fmt(r.result.rps)} | ${fmt(r.result.rps / ceiling, 2)} | ${r.result.p50} | ${r.result.p99} | ${r.result.p999} | ${r.purchasesPerScriptCall !== undefined ? fmt(r.purchasesPerScriptCall, 1) : '-'} | ${Object.entries(
        r.outcomes,
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')} | ${
        r.invariants.length === 0
          ? '-'
          : r.invariants.every((i) => i.ok)
            ? 'all hold'
            : 'FAILED: ' +
              r.invariants
                .filter((i) => !i.ok)
                .map((i) => i.name)
                .join(', ')
      } |`,
  );
  return [
    '| scenario | server | req/s | ratio to ceiling | p50 ms | p99 ms | p99.9 ms | purchases per script call | outcomes | invariants |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

/** A horizontal bar chart of req/s per run, with p99 beside each bar. */
export function scenarioChart(results: ScenarioResult[]): string {
  const width = 900;
  const barH = 26;
  const left = 330;
  const max = Math.max(...results.map((r) => r.result.rps));
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const bars = results.map((r, i) => {
    const y = 40 + i * (barH + 10);
    const w = Math.max(2, ((width - left - 160) * r.result.rps) / max);
    const color =
      r.server === 'engine' ? '#2f6fdf' : r.server.startsWith('ceiling') ? '#7a7a7a' : '#d9822b';
    return `<text x="${left - 8}" y="${y + 17}" text-anchor="end" font-size="12">${esc(`${r.scenario} (${r.server})`)}</text><rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color}"/><text x="${left + w + 6}" y="${y + 17}" font-size="12">${fmt(r.result.rps)} req/s · p99 ${r.result.p99} ms</text>`;
  });
  const height = 60 + results.length * (barH + 10);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif"><text x="10" y="22" font-size="15" font-weight="bold">Throughput per scenario (one run, one machine)</text>${bars.join('')}</svg>\n`;
}
