// `npm run demo`: a flash sale end to end. Starts the services if needed, migrates,
// starts the engine (API + sweeper, relay + writer, as separate processes), creates a SKU,
// fires 50,000 purchase attempts from 20,000 users (with same-key retries and some
// cancels) through autocannon, waits for the pipeline to drain, compares Redis with
// PostgreSQL and prints a report. Exits non-zero if any invariant fails.
// `npm run demo -- --waiting-room` runs the sale through a waiting room instead: every
// buyer joins before the opening and buys once admitted (bench/waiting-room-sale.ts); the
// report adds the admission rate and the waits from join to admission.
import { randomBytes } from 'node:crypto';
import { compareSkus } from '../src/reconcile/compare.js';
import { fmt, load, startServer, tokens, type LoadResult } from './lib.js';
import { prepare } from './setup.js';
import { percentile, queuedSale, type QueuedSaleResult } from './waiting-room-sale.js';

const STOCK = Number(process.env.DEMO_STOCK ?? 1000);
const LIMIT = Number(process.env.DEMO_LIMIT ?? 2);
const ATTEMPTS = Number(process.env.DEMO_ATTEMPTS ?? 50000);
const USERS = Number(process.env.DEMO_USERS ?? 20000);
const WAITING_ROOM = process.argv.slice(2).includes('--waiting-room');
const ADMISSIONS_PER_S = Number(process.env.DEMO_ADMISSIONS_PER_S ?? 100);
const ADMISSION_TTL_S = 60;
const say = (line: string) => process.stdout.write(`${line}\n`);
const step = (line: string) => say(`\n▶ ${line}`);

step('Services (reused when running, started otherwise) and migrations');
const { cfg, engine } = await prepare((l) => say(`  ${l}`));
const servers: { stop(): Promise<void> }[] = [];
let failed = true; // until every invariant has been checked
try {
  step('Engine: API + expiry sweeper, and relay + DB writer, as two processes');
  const api = await startServer('dist/src/main.js', { PORT: '0', LOG_LEVEL: 'info' }, [
    'api',
    'sweeper',
  ]);
  servers.push(api);
  servers.push(
    await startServer('dist/src/main.js', { PORT: '0', LOG_LEVEL: 'info' }, ['relay', 'writer']),
  );
  say(`  API at ${api.url}`);

  step(`Signing ${fmt(USERS)} buyer tokens`);
  const users = Array.from({ length: USERS }, (_, i) => `buyer${i}`);
  const jwts = await tokens(cfg.JWT_SECRET, users);

  const sku = `demo-${randomBytes(3).toString('hex')}`;
  // Time for every buyer to join before the opening (about 2,000 joins a second here);
  // DEMO_OPENS_IN_S=0 opens the sale as the buyers arrive: the opening second's storm.
  const opensAt = Date.now() + Number(process.env.DEMO_OPENS_IN_S ?? 10 + USERS / 2000) * 1000;
  step(
    `Creating ${sku}: ${fmt(STOCK)} units, limit ${LIMIT} per user` +
      (WAITING_ROOM
        ? `, through a waiting room admitting ${fmt(ADMISSIONS_PER_S)} a second from ${new Date(opensAt).toISOString()}`
        : ''),
  );
  const created = await fetch(`${api.url}/v1/admin/skus`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cfg.ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      sku,
      name: 'Demo sneaker drop',
      stock: STOCK,
      perUserLimit: LIMIT,
      ...(WAITING_ROOM
        ? {
            startsAt: new Date(opensAt).toISOString(),
            waitingRoom: {
              admissionsPerSecond: ADMISSIONS_PER_S,
              admissionTtlSeconds: ADMISSION_TTL_S,
            },
          }
        : {}),
    }),
  });
  if (created.status !== 201)
    throw new Error(`create SKU: ${created.status} ${await created.text()}`);

  type Sent = { user: number; key: string; quantity: number; retry: boolean };
  const sentKeys: Sent[] = [];
  const outcomes = new Map<string, number>();
  const orderByKey = new Map<string, string>();
  const replayMismatch: string[] = [];
  const accepted: { orderId: string; user: number }[] = [];
  let n = 0;
  const cancels: Promise<number>[] = [];
  let result: LoadResult | undefined;
  let queued: QueuedSaleResult | undefined;
  if (WAITING_ROOM) {
    step(
      `Flash sale through the waiting room: ${fmt(USERS)} buyers join, poll, and buy once admitted (1 in 10 first tries without the pass, 1 in 10 retries, 1 in 20 cancels)`,
    );
    queued = await queuedSale({
      url: api.url,
      sku,
      jwts,
      opensAt,
      admissionTtlSeconds: ADMISSION_TTL_S,
      concurrency: 100,
      log: (l) => say(`  ${l}`),
    });
    for (const [label, count] of queued.outcomes) outcomes.set(label, count);
    accepted.push(...queued.accepted);
    replayMismatch.push(...queued.replayMismatch);
    say(`  ${queued.cancelled} cancellations accepted during the sale`);
  } else {
    step(
      `Flash sale: ${fmt(ATTEMPTS)} attempts, 100 connections; 10% are retries reusing a key; 1 buyer in 20 cancels`,
    );
    const cancel = (orderId: string, user: number) =>
      fetch(`${api.url}/v1/orders/${orderId}/cancel`, {
        method: 'POST',
        headers: { authorization: `Bearer ${jwts[user]}` },
      }).then((r) => r.status);
    const progress = setInterval(() => {
      void fetch(`${api.url}/v1/skus/${sku}`)
        .then((r) => r.json() as Promise<{ available: number }>)
        .then((v) => say(`  … ${fmt(n)} sent, ${fmt(STOCK - v.available)} units held`))
        .catch(() => undefined);
    }, 1000);
    result = await load({
      url: api.url,
      path: `/v1/skus/${sku}/purchases`,
      connections: 100,
      amount: ATTEMPTS,
      next: () => {
        n += 1;
        const previous =
          sentKeys.length > 100 && n % 10 === 0
            ? sentKeys[Math.floor(Math.random() * sentKeys.length)]
            : undefined;
        const s: Sent = previous
          ? { ...previous, retry: true }
          : {
              user: Math.floor(Math.random() * USERS),
              key: `${sku}-${n}`,
              quantity: 1 + (n % 3 === 0 ? 1 : 0),
              retry: false,
            };
        if (!previous) sentKeys.push(s);
        return {
          headers: {
            authorization: `Bearer ${jwts[s.user]}`,
            'idempotency-key': s.key,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ quantity: s.quantity }),
          meta: s,
        };
      },
      onResponse: (status, body, meta) => {
        const s = meta as Sent;
        const parsed = JSON.parse(body) as { orderId?: string; error?: { code: string } };
        const label =
          status === 201
            ? orderByKey.has(s.key)
              ? 'replayed'
              : 'created'
            : (parsed.error?.code ?? String(status));
        outcomes.set(label, (outcomes.get(label) ?? 0) + 1);
        if (status === 201 && parsed.orderId) {
          const known = orderByKey.get(s.key);
          if (known && known !== parsed.orderId) replayMismatch.push(s.key);
          if (!known) {
            orderByKey.set(s.key, parsed.orderId);
            accepted.push({ orderId: parsed.orderId, user: s.user });
            // One buyer in 20 changes their mind mid-sale: the units go back and sell again.
            if (accepted.length % 20 === 0) cancels.push(cancel(parsed.orderId, s.user));
          }
        }
      },
    });
    clearInterval(progress);

    const cancelled = await Promise.all(cancels);
    say(
      `  ${cancelled.filter((c) => c === 200).length} of ${cancels.length} cancellations accepted during the sale`,
    );
  }

  step('Waiting for the pipeline to drain (Redis -> Kafka -> PostgreSQL)');
  const drainStarted = Date.now();
  let cmp = (await compareSkus(engine.redis, engine.db, engine.keys, [sku]))[0]!;
  while (cmp.lag !== 0 && Date.now() - drainStarted < 120000) {
    await new Promise((r) => setTimeout(r, 200));
    cmp = (await compareSkus(engine.redis, engine.db, engine.keys, [sku]))[0]!;
  }
  say(`  drained ${fmt((Date.now() - drainStarted) / 1000, 1)} s after the last request`);

  step('Reconciliation pass (POST /v1/admin/reconcile), then Redis vs PostgreSQL for this SKU');
  const pass = (await (
    await fetch(`${api.url}/v1/admin/reconcile`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cfg.ADMIN_TOKEN}` },
    })
  ).json()) as { skus: number; findings: { sku: string; kind: string }[] };
  const findings = pass.findings.filter((f) => f.sku === sku);
  say(
    `  ${pass.skus} SKUs compared; findings for ${sku}: ${findings.length ? findings.map((f) => f.kind).join(', ') : 'none'}`,
  );
  const orders = await engine.db.order.findMany({
    where: { skuId: sku },
    select: { id: true, userId: true, quantity: true, status: true },
  });
  const live = orders.filter((o) => o.status === 'reserved' || o.status === 'confirmed');
  const perUser = new Map<string, number>();
  for (const o of live) perUser.set(o.userId, (perUser.get(o.userId) ?? 0) + o.quantity);
  const redisHeld = Object.values(await engine.redis.hgetall(engine.keys.forSku(sku).users)).reduce(
    (s, v) => s + Number(v),
    0,
  );
  const [lag] = await engine.db.$queryRaw<{ p50: number; p99: number }[]>`
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99
    FROM (SELECT extract(epoch FROM applied_at - occurred_at) * 1000 AS ms FROM stock_events WHERE sku_id = ${sku}) t`;
  const acceptedIds = new Set(accepted.map((o) => o.orderId));
  const dbIds = new Set(orders.map((o) => o.id));
  const soldUnits = live.reduce((s, o) => s + o.quantity, 0);

  const checks: [string, boolean, string][] = [
    [
      'No oversell',
      soldUnits <= (cmp.redis?.supplied ?? 0) && (cmp.redis?.available ?? -1) >= 0,
      `${fmt(soldUnits)} units held by live orders of ${fmt(cmp.redis?.supplied ?? 0)} supplied`,
    ],
    [
      'Conservation in Redis',
      cmp.redis !== null && cmp.redis.available + redisHeld === cmp.redis.supplied,
      `${cmp.redis?.available} available + ${redisHeld} held = ${cmp.redis?.supplied}`,
    ],
    [
      'Conservation in PostgreSQL',
      cmp.conservationGap === 0,
      `${cmp.db.available} available + ${cmp.db.heldByLiveOrders} held = ${cmp.db.supplied}`,
    ],
    [
      'Redis equals PostgreSQL',
      cmp.lag === 0 && cmp.drift === 0 && cmp.redis?.supplied === cmp.db.supplied,
      `available ${cmp.redis?.available}/${cmp.db.available}, sequence ${cmp.redis?.sequence}/${cmp.db.sequence}`,
    ],
    [
      'Every accepted order in PostgreSQL, none twice',
      orders.length === dbIds.size &&
        [...acceptedIds].every((id) => dbIds.has(id)) &&
        dbIds.size === acceptedIds.size,
      `${fmt(acceptedIds.size)} accepted, ${fmt(dbIds.size)} rows`,
    ],
    [
      'Retries answered with the original order',
      replayMismatch.length === 0,
      `${fmt(outcomes.get('replayed') ?? 0)} replays, ${replayMismatch.length} mismatches`,
    ],
    [
      'Reconciliation finds nothing for this SKU',
      findings.length === 0,
      findings.length
        ? findings.map((f) => f.kind).join(', ')
        : 'no drift, lag or conservation finding',
    ],
    [
      'No user over the limit',
      [...perUser.values()].every((q) => q <= LIMIT),
      `max ${Math.max(0, ...perUser.values())} per user, limit ${LIMIT}`,
    ],
  ];
  if (queued) {
    const q = queued;
    checks.push(
      [
        'Every buyer joined and heard an end',
        q.joined === USERS && q.admitted + q.closed === USERS,
        `${fmt(q.joined)} joined: ${fmt(q.admitted)} admitted, ${fmt(q.closed)} told the queue closed`,
      ],
      [
        'No purchase without an admitted pass',
        q.refusedWithoutPass === q.attemptsWithoutPass,
        `${fmt(q.refusedWithoutPass)} of ${fmt(q.attemptsWithoutPass)} attempts without the pass refused`,
      ],
    );
  }
  failed = checks.some(([, ok]) => !ok);

  say('\n══════════════ Flash sale report ══════════════');
  say(`SKU ${sku}: ${fmt(STOCK)} units, limit ${LIMIT} per user, ${fmt(USERS)} buyers`);
  if (result) {
    say(
      `Attempts:     ${fmt(result.requests)} in ${fmt(result.durationS, 1)} s = ${fmt(result.rps)} req/s`,
    );
    say(`Latency:      p50 ${result.p50} ms, p99 ${result.p99} ms, p99.9 ${result.p999} ms`);
  }
  if (queued) {
    const q = queued;
    const first = q.admissionInstants[0] ?? opensAt;
    const last = q.admissionInstants.at(-1) ?? first;
    // Over the span of the admissions: n tickets need n - 1 intervals.
    const rate = last > first ? ((q.admissionInstants.length - 1) * 1000) / (last - first) : 0;
    const s = (ms: number) => `${fmt(ms / 1000, 1)} s`;
    say(
      `Waiting room: ${fmt(q.joined)} joined in ${fmt(q.joinSeconds, 1)} s (${fmt(q.joinedBeforeOpening)} before the opening); ${fmt(q.polls)} polls (${fmt(q.rateLimited)} answered 429)`,
    );
    say(
      `Admissions:   ${fmt(q.admitted)} at ${fmt(rate, 1)} a second (configured ${fmt(ADMISSIONS_PER_S)}), the first ${fmt(first - opensAt)} ms after the opening; ${fmt(q.closed)} buyers told the queue closed`,
    );
    say(
      `Waits:        join -> admission p50 ${s(percentile(q.waitsFromJoin, 50))}, p99 ${s(percentile(q.waitsFromJoin, 99))}; opening -> admission p50 ${s(percentile(q.waitsFromOpening, 50))}, p99 ${s(percentile(q.waitsFromOpening, 99))}`,
    );
    const ms = (xs: number[]) =>
      `p50 ${fmt(percentile(xs, 50))} ms, p99 ${fmt(percentile(xs, 99))} ms`;
    say(
      `Latency:      join ${ms(q.latencies.join)}; poll ${ms(q.latencies.poll)}; purchase ${ms(q.latencies.purchase)}`,
    );
    const o = q.openingSecond;
    const admittedInIt = q.admissionInstants.filter((t) => t >= opensAt && t < opensAt + 1000);
    say(
      `Opening second: ${fmt(o.latencies.length)} requests sent (${fmt(o.sent.join)} joins, ${fmt(o.sent.poll)} polls, ${fmt(o.sent.purchase)} purchases), ${ms(o.latencies)}, ${fmt(o.errors5xx)} answered 5xx; ${fmt(admittedInIt.length)} admitted in it`,
    );
    say(`Sale:         ${fmt(q.durationS, 1)} s from the first join to the last buyer's end`);
  }
  say(
    `Units sold:   ${fmt(soldUnits)} (in ${fmt(live.length)} live orders; ${fmt(orders.length - live.length)} cancelled or expired)`,
  );
  say('Outcomes:');
  for (const [label, count] of [...outcomes].sort((a, b) => b[1] - a[1]))
    say(`  ${label.padEnd(24)} ${fmt(count).padStart(8)}`);
  if (result?.errors) say(`  connection errors        ${fmt(result.errors).padStart(8)}`);
  say(
    `Pipeline lag: purchase -> PostgreSQL p50 ${fmt(Number(lag?.p50 ?? 0))} ms, p99 ${fmt(Number(lag?.p99 ?? 0))} ms`,
  );
  say('Invariants:');
  for (const [name, ok, detail] of checks) say(`  ${ok ? '✔' : '✘'} ${name.padEnd(48)} ${detail}`);
  say(failed ? '\nSOME INVARIANTS FAILED' : '\nAll invariants hold.');
} catch (err) {
  console.error(err);
} finally {
  for (const s of servers.reverse()) await s.stop();
  await engine.stop();
}
process.exit(failed ? 1 : 0);
