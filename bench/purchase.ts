// Purchase throughput of the engine's API as a ratio to a bare node:http server running
// the same inventory call (the ceiling), measured in one run on one machine. Also runs the
// same handler through express's router (PURCHASE_FAST_PATH=false), the "before".
import { randomBytes } from 'node:crypto';
import { Engine } from '../src/engine.js';
import { Authenticator } from '../src/http/auth.js';
import { PassTokens } from '../src/admission/tokens.js';
import type { AdmissionSettings } from '../src/inventory/admission-fields.js';
import { cpuSeconds } from './cpu.js';
import { loadConfig } from '../src/shared/config.js';
import { ownRedis } from '../test/support/redis-server.js';
import { fmt, load, startServer, tokens, type LoadResult, type Server } from './lib.js';

export interface PurchaseVariant {
  name: string;
  script: string;
  env: Record<string, string>;
  args?: string[];
  /** The ceiling takes the user in a header; the engine takes a JWT. */
  auth: 'jwt' | 'header';
  /**
   * Admission control on: the SKU sells through its waiting room and requires
   * qualification, every buyer sends both passes, and the buyer and client-address rate
   * limits run (set too high to refuse anyone: the cost of checking, not of refusing).
   */
  admission?: boolean;
}

/** A SKU's settings with admission on: it sells through its waiting room to qualified buyers. */
export const queuedAndQualified = (admissionTtlSeconds: number): AdmissionSettings => ({
  waitingRoom: { admissionsPerSecond: 1, admissionsPerUnitLeft: null, admissionTtlSeconds },
  qualificationRequired: true,
  rateLimit: null,
});

interface BuyerPasses {
  admission: string;
  qualification: string;
}

/** Each buyer's two passes for `sku`, valid for an hour, signed as the engine and the seller would. */
function signPasses(tokens: PassTokens, buyers: string[], sku: string): BuyerPasses[] {
  const expiresAtMs = Date.now() + 3_600_000;
  return buyers.map((buyer, i) => ({
    admission: tokens.signAdmission({ buyer, sku, ticket: `t${i}`, expiresAtMs }),
    qualification: tokens.signQualification({ buyer, sku, expiresAtMs }),
  }));
}

/** The limits of the admission-on variant: every buyer and address limited, none reached. */
export const ADMISSION_LIMITS = {
  RATE_LIMIT_BUYER_PER_S: '1000',
  RATE_LIMIT_BUYER_BURST: '1000',
  RATE_LIMIT_CLIENT_PER_S: '1000000',
  RATE_LIMIT_CLIENT_BURST: '1000000',
};

export const VARIANTS: PurchaseVariant[] = [
  {
    name: 'ceiling: bare node:http',
    script: 'dist/bench/ceiling-server.js',
    env: {},
    auth: 'header',
  },
  {
    name: 'ceiling, two Redis round trips (the Redis Cluster path)',
    script: 'dist/bench/ceiling-server.js',
    env: { CEILING_ROUND_TRIPS: '2' },
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
  {
    name: 'engine API, admission control on',
    script: 'dist/src/main.js',
    env: { LOG_LEVEL: 'info', ...ADMISSION_LIMITS },
    args: ['api'],
    auth: 'jwt',
    admission: true,
  },
];

/**
 * Every variant runs at once (an idle server costs nothing) and takes the load in turns,
 * `slices` times each, so a slow spell of the machine weighs on all of them alike: req/s is
 * over all of a variant's slices, p50 and p99 the median of its slices'.
 */
export async function purchaseBench(
  engine: Engine,
  opts: { durationS: number; connections: number; users?: number; slices?: number },
) {
  const users = Array.from({ length: opts.users ?? 5000 }, (_, i) => `bu${i}`);
  const jwts = await tokens(engine.cfg.JWT_SECRET, users);
  const slices = opts.slices ?? 3;
  // A redis-server of the bench's own: no relay runs here, so the events the purchases
  // append must not be left in the shared Redis for the next bench's pipeline to carry.
  const redis = await ownRedis();
  const own = new Engine(
    loadConfig({ ...process.env, REDIS_URL: redis.url, LOG_LEVEL: 'warn' }),
    'bench-purchase',
  );
  const running: {
    v: PurchaseVariant;
    server: Server;
    next: () => Req;
    /** Requests built so far. */
    sent: () => number;
    runs: LoadResult[];
    /** CPU seconds of the API process and of Redis while this variant took the load. */
    cpu: { api: number; redis: number };
  }[] = [];
  try {
    for (const v of VARIANTS) {
      const sku = `bench-${randomBytes(4).toString('hex')}`;
      await own.inventory.createSku({
        sku,
        name: sku,
        stock: 10_000_000,
        perUserLimit: 100_000,
      });
      // Passes for every buyer, signed as the waiting room and the seller's system would.
      let passes: BuyerPasses[] = [];
      if (v.admission) {
        await own.inventory.setAdmission(sku, queuedAndQualified(3600));
        passes = signPasses(own.passes, users, sku);
      }
      const server = await startServer(
        v.script,
        { ...v.env, PORT: '0', REDIS_URL: redis.url },
        v.args,
      );
      let n = 0;
      const next = () => {
        const u = n++ % users.length;
        return {
          path: `/v1/skus/${sku}/purchases`,
          headers: {
            'content-type': 'application/json',
            'idempotency-key': `${sku}-${n}`,
            ...(v.auth === 'jwt'
              ? { authorization: `Bearer ${jwts[u]}` }
              : { 'x-user': users[u]! }),
            ...(v.admission
              ? {
                  'admission-token': passes[u]!.admission,
                  'qualification-token': passes[u]!.qualification,
                }
              : {}),
          },
          body: '{"quantity":1}',
        };
      };
      running.push({ v, server, next, sent: () => n, runs: [], cpu: { api: 0, redis: 0 } });
    }
    const run = (r: (typeof running)[number], durationS: number) =>
      load({
        url: r.server.url,
        path: '/',
        connections: opts.connections,
        durationS,
        next: r.next,
      });
    // Warm-up: JIT, connection pools, and the token caches, so every buyer's tokens have
    // been seen once (a first sight is a signature check per token: with admission on,
    // three per buyer). Runs until every buyer has sent a request, however slow that is.
    for (const r of running)
      do await run(r, 2);
      while (r.sent() < users.length);
    // Server-side CPU of each slice: what a purchase costs the API and Redis, whatever the
    // load generator (on the same cores) spends on building and reading requests.
    const cpuNow = (r: (typeof running)[number]) => ({
      api: cpuSeconds(r.server.child.pid!) ?? NaN,
      redis: cpuSeconds(redis.pid()!) ?? NaN,
    });
    for (let i = 0; i < slices; i++)
      for (const r of running) {
        const before = cpuNow(r);
        r.runs.push(await run(r, opts.durationS / slices));
        const after = cpuNow(r);
        r.cpu.api += after.api - before.api;
        r.cpu.redis += after.redis - before.redis;
      }
  } finally {
    for (const r of running) await r.server.stop();
    await own.stop();
    await redis.close();
  }
  return running.map(({ v, runs, cpu }) => {
    const result = combine(runs);
    const answered = result.requests || 1;
    const cpuUsPerRequest = {
      api: Math.round((cpu.api * 1e6) / answered),
      redis: Math.round((cpu.redis * 1e6) / answered),
    };
    process.stderr.write(
      `  ${v.name}: ${fmt(result.rps)} req/s, p50 ${result.p50} ms, p99 ${result.p99} ms, server CPU µs per request ${JSON.stringify(cpuUsPerRequest)} ${JSON.stringify(result.statusCounts)}\n`,
    );
    return { variant: v.name, result, cpuUsPerRequest };
  });
}

type Req = { path: string; headers: Record<string, string>; body: string };

/** One result for several runs of the same variant: totals, and the median run's latencies. */
function combine(runs: LoadResult[]): LoadResult {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const requests = runs.reduce((s, r) => s + r.requests, 0);
  const durationS = runs.reduce((s, r) => s + r.durationS, 0);
  const statusCounts: Record<string, number> = {};
  for (const r of runs)
    for (const [k, c] of Object.entries(r.statusCounts))
      statusCounts[k] = (statusCounts[k] ?? 0) + c;
  return {
    requests,
    durationS,
    rps: requests / durationS,
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    p999: median(runs.map((r) => r.p999)),
    statusCounts,
    errors: runs.reduce((s, r) => s + r.errors, 0),
  };
}

export function purchaseTable(
  results: {
    variant: string;
    result: LoadResult;
    cpuUsPerRequest: { api: number; redis: number };
  }[],
): string {
  const ceiling = results[0]!.result.rps;
  const rows = results.map(
    ({ variant, result: r, cpuUsPerRequest: c }) =>
      `| ${variant} | ${fmt(r.rps)} | ${fmt(r.rps / ceiling, 2)} | ${r.p50} | ${r.p99} | ${r.p999} | ${c.api} + ${c.redis} | ${Object.entries(
        r.statusCounts,
      )
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ')} |`,
  );
  return [
    '| server | req/s | ratio to ceiling | p50 ms | p99 ms | p99.9 ms | CPU µs per request, server + Redis | statuses |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

/** What the API spends checking one buyer's credentials the first time it sees them. */
export interface FirstSight {
  /** CPU µs to verify a buyer's login token not seen before. */
  buyerTokenUs: number;
  /** CPU µs to verify a buyer's Admission-Token and Qualification-Token not seen before. */
  passesUs: number;
}

/**
 * The first request of each buyer pays a signature check per token (three with admission
 * on), the rest find them cached, as the route bench above measures. At a sale's opening
 * nearly every request is a first: `buyers` fresh buyers' tokens, verified by the engine's
 * own classes, in this process.
 */
export async function firstSightBench(engine: Engine, buyers = 5000): Promise<FirstSight> {
  const cfg = engine.cfg;
  const ids = Array.from({ length: buyers }, (_, i) => `fs${randomBytes(4).toString('hex')}${i}`);
  const logins = await tokens(cfg.JWT_SECRET, ids);
  const passes = signPasses(engine.passes, ids, 's');
  const cpuUs = (work: () => void) => {
    const before = process.cpuUsage();
    work();
    const used = process.cpuUsage(before);
    return (used.user + used.system) / buyers;
  };
  // New instances each time: empty caches, as in an API process meeting these buyers.
  const auth = new Authenticator(cfg.JWT_SECRET, cfg.ADMIN_TOKEN);
  const buyerTokenUs = cpuUs(() => {
    for (const t of logins) auth.buyer(`Bearer ${t}`);
  });
  const check = new PassTokens(cfg.ADMISSION_SECRET, cfg.QUALIFICATION_SECRET);
  const passesUs = cpuUs(() => {
    for (let i = 0; i < buyers; i++) {
      const ok =
        check.admits(passes[i]!.admission, ids[i]!, 's') &&
        check.qualifies(passes[i]!.qualification, ids[i]!, 's');
      if (!ok) throw new Error('a pass the bench signed was refused');
    }
  });
  process.stderr.write(
    `  first sight of a buyer: login token ${fmt(buyerTokenUs, 1)} µs, both passes ${fmt(passesUs, 1)} µs of CPU\n`,
  );
  return { buyerTokenUs, passesUs };
}
