// `npm run bench [-- [--runs N] purchase|scenarios|pipeline|cost|memory|expiry|durability]`:
// runs benchmark scenarios N times (default 1) and writes the results under bench/results/
// as JSON, Markdown and an SVG chart: a summary of the headline figures (the median of the
// runs, with their spread), then every run's details.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fmt } from './lib.js';
import { durabilityBench, durabilityTable } from './durability.js';
import { expiryBench } from './expiry.js';
import { memoryBench } from './memory.js';
import { lagBench, pgOnlyCpuBench, writerBench } from './pipeline.js';
import { firstSightBench, purchaseBench, purchaseTable } from './purchase.js';
import { redisCostBench, type PathCost } from './redis-cost.js';
import { scenarioChart, scenarios, scenarioTable } from './scenarios.js';
import { prepare } from './setup.js';
import { summarize, summaryChart, summaryTable } from './summary.js';

const argv = process.argv.slice(2);
const runsAt = argv.indexOf('--runs');
const runs = runsAt >= 0 ? Number(argv[runsAt + 1]) : 1;
if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a whole number >= 1');
const which = new Set(argv.filter((_, i) => runsAt < 0 || (i !== runsAt && i !== runsAt + 1)));
const all = which.size === 0;
const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
// The benches drive a SKU with a few thousand simulated buyers at full speed: the per-buyer
// rate limit (on by default) would answer most of them 429. The admission bench turns it
// on for its own servers.
process.env.RATE_LIMIT_BUYER_PER_S ??= '0';
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);

const { engine } = await prepare((l) => process.stderr.write(`${l}\n`));
const perRun: Record<string, unknown>[] = [];
const reports: string[][] = [];
let chart = '';

async function runOnce(run: number): Promise<void> {
  const report: string[] = [`## Run ${run} of ${runs}`, ''];
  const json: Record<string, unknown> = { at: new Date().toISOString() };
  perRun.push(json);
  reports.push(report);
  if (all || which.has('scenarios')) {
    process.stderr.write('scenarios: engine vs ceiling vs PostgreSQL-only baseline\n');
    const results = await scenarios(engine, { durationS, connections });
    json.scenarios = results;
    const ceiling = results.find((r) => r.server.startsWith('ceiling'))!.result.rps;
    const pgOnly = results.find((r) => r.server.startsWith('PostgreSQL'))!.result.rps;
    const hot = results.find((r) => r.server === 'engine' && r.scenario === 'hot SKU')!.result.rps;
    const storm = results.find((r) => r.scenario === 'sold-out storm')!.result.rps;
    report.push(
      '### Scenarios',
      '',
      scenarioTable(results),
      '',
      `Hot SKU through the engine: ${fmt(hot / ceiling, 2)} of the ceiling, ${fmt(hot / pgOnly, 1)}x the PostgreSQL-only baseline; sold-out storm: ${fmt(storm / ceiling, 2)} of the ceiling.`,
      '',
      '![throughput per scenario](results.svg)',
      '',
    );
    chart = scenarioChart(results);
    if (results.some((r) => r.invariants.some((i) => !i.ok))) process.exitCode = 1;
  }
  if (all || which.has('purchase')) {
    process.stderr.write(
      'purchase: engine API vs bare node:http running the same inventory call\n',
    );
    const results = await purchaseBench(engine, { durationS, connections });
    json.purchase = results;
    const first = await firstSightBench(engine);
    json.firstSight = first;
    report.push(
      '### Purchase route',
      '',
      purchaseTable(results),
      '',
      `A buyer's first request: ${fmt(first.buyerTokenUs, 1)} µs of CPU to verify the login token, ${fmt(first.passesUs, 1)} µs for both passes (admission on); later requests find them cached.`,
      '',
    );
  }
  if (all || which.has('pipeline')) {
    process.stderr.write(
      'pipeline: DB writer batching vs one event per transaction; end-to-end lag\n',
    );
    const writer = await writerBench(engine, { events: 20000, singleEvents: 3000 });
    const rate = Number(process.env.BENCH_LAG_RATE ?? 2000);
    const lag = await lagBench({ rate, durationS });
    const pgOnly = await pgOnlyCpuBench(engine, { rate, durationS });
    json.pipeline = { writer, lag, pgOnly };
    const cpu = (c: Record<string, number>) =>
      Object.entries(c)
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join(', ');
    report.push(
      '### Event pipeline',
      '',
      '| measure | value |',
      '| --- | --- |',
      `| DB writer, batched (events/s) | ${fmt(writer.batchedEventsPerS)} |`,
      `| DB writer, one event per transaction (events/s) | ${fmt(writer.singleEventsPerS)} |`,
      `| batching speed-up | ${fmt(writer.ratio, 1)}x |`,
      `| steady purchase load (purchases/s) | ${fmt(lag.purchasesPerS)} |`,
      `| lag purchase -> PostgreSQL p50 / p99 / max (ms) | ${fmt(lag.lagP50Ms)} / ${fmt(lag.lagP99Ms)} / ${fmt(lag.lagMaxMs)} |`,
      `| CPU µs per accepted purchase, engine (load to drained) | ${cpu(lag.cpuUsPerPurchase)} |`,
      `| CPU µs per accepted purchase, PostgreSQL only (${fmt(pgOnly.purchasesPerS)} purchases/s) | ${cpu(pgOnly.cpuUsPerPurchase)} |`,
      '',
    );
  }
  if (all || which.has('cost')) {
    process.stderr.write(
      'cost: Redis time per purchase, round trips, per-SKU capacity vs PostgreSQL\n',
    );
    const c = await redisCostBench({
      purchases: Number(process.env.BENCH_COST_PURCHASES ?? 10000),
      rounds: 3,
      pgDurationS: Math.min(durationS, 5),
    });
    json.cost = c;
    const path = (name: string, p: PathCost) => [
      `| ${name}: Redis time per purchase (µs) | ${fmt(p.redisUsPerPurchase, 1)} |`,
      `| ${name}: round trips per purchase | ${fmt(p.redisRoundTripsPerPurchase, 2)} |`,
      `| ${name}: commands Redis receives per purchase; purchases per script call | ${fmt(p.redisCallsPerPurchase, 2)}; ${fmt(p.purchasesPerScriptCall, 1)} |`,
      `| ${name}: calls, µs per call | ${p.topLevel.map((t) => `${t.command} ${fmt(t.callsPerPurchase, 2)}, ${fmt(t.usPerCall, 1)}`).join('; ')} |`,
      `| ${name}: inside the script, calls per purchase | ${p.insideScript.map((t) => `${t.command} ${fmt(t.callsPerPurchase, 2)}`).join(', ')} |`,
    ];
    report.push(
      '### Redis cost per purchase',
      '',
      `From Redis's own INFO commandstats, on a redis-server of the bench's own; the median of ${c.rounds} alternating rounds of ${fmt(c.purchases)} purchases per path.`,
      '',
      '| measure | value |',
      '| --- | --- |',
      ...path('single node (claim in the script)', c.singleNode),
      ...path('Redis Cluster path (claim, then script)', c.cluster),
      ...path('single node, each purchase in a call of its own (PURCHASE_BATCH_MAX=1)', c.alone),
      ...path('single node, default buyer limit on (5/s)', c.buyerLimit),
      `| a lean five-command script on the same server, INFO commandstats (µs per call) | ${fmt(c.leanScriptUs, 1)} |`,
      `| Redis time per purchase / the lean script, both by INFO commandstats | ${fmt(c.redisUsPerPurchaseToLean, 2)} |`,
      `| the lean script by redis-benchmark, 50 clients, as issue 13 measured it (µs per call = 1 s / rate; 18 where the goal was set) | ${c.leanScriptBenchmarkUs !== undefined ? fmt(c.leanScriptBenchmarkUs, 1) : 'not measured: redis-benchmark is not installed'} |`,
      `| issue 13's goal on this machine: 25 µs x that / 18 (µs of Redis time per purchase) | ${c.redisUsGoal !== undefined ? fmt(c.redisUsGoal, 1) : 'not measured'} |`,
      `| Redis time per purchase / that goal (at most 1 meets it) | ${c.redisUsPerPurchaseToGoal !== undefined ? fmt(c.redisUsPerPurchaseToGoal, 2) : 'not measured'} |`,
      `| the same, each purchase in a call of its own | ${c.redisUsPerPurchaseAloneToGoal !== undefined ? fmt(c.redisUsPerPurchaseAloneToGoal, 2) : 'not measured'} |`,
      `| per-SKU capacity (purchases/s = 1 s / Redis time, single node) | ${fmt(c.perSkuCapacityPerS)} |`,
      `| PostgreSQL hot row (purchases/s, 50 sessions) | ${fmt(c.pgHotRowPerS)} |`,
      `| per-SKU capacity vs PostgreSQL hot row | ${fmt(c.perSkuCapacityVsPg, 1)}x |`,
      `| redis-server instructions per purchase (callgrind, single node) | ${c.instructionsPerPurchase !== undefined ? fmt(c.instructionsPerPurchase) : 'not measured: valgrind is not installed'} |`,
      `| the same, each purchase in a call of its own | ${c.instructionsPerPurchaseAlone !== undefined ? fmt(c.instructionsPerPurchaseAlone) : 'not measured'} |`,
      `| the same, default buyer limit on | ${c.instructionsPerPurchaseBuyerLimit !== undefined ? fmt(c.instructionsPerPurchaseBuyerLimit) : 'not measured'} |`,
      `| the same, admission control on (both passes, buyer and address limits) | ${c.instructionsPerPurchaseAdmission !== undefined ? fmt(c.instructionsPerPurchaseAdmission) : 'not measured'} |`,
      '',
    );
  }
  if (all || which.has('memory')) {
    process.stderr.write('memory: Redis bytes per accepted order and per refused attempt\n');
    const m = await memoryBench({ orders: 20000, refused: 20000 });
    json.memory = m;
    report.push(
      '### Redis memory',
      '',
      '| measure | bytes |',
      '| --- | --- |',
      `| per accepted order, once relayed (${fmt(m.orders)} orders) | ${fmt(m.bytesPerOrder)} |`,
      `| per refused attempt (${fmt(m.refusedAttempts)} attempts on a sold-out SKU) | ${fmt(m.bytesPerRefusedAttempt)} |`,
      `| per rate-limited attempt (${fmt(m.limitedAttempts)} attempts, one buyer flooding fresh keys) | ${fmt(m.bytesPerLimitedAttempt)} |`,
      '',
    );
  }
  if (all || which.has('expiry')) {
    process.stderr.write('expiry: a backlog of due reservations swept beside purchases\n');
    const e = await expiryBench({
      reservations: Number(process.env.BENCH_EXPIRY_RESERVATIONS ?? 50000),
      skus: 64,
    });
    json.expiry = e;
    report.push(
      '### Expiry at scale',
      '',
      '| measure | value |',
      '| --- | --- |',
      `| due reservations (over ${fmt(e.skus)} SKUs) | ${fmt(e.reservations)} |`,
      `| swept in (s) | ${fmt(e.sweepSeconds, 2)} |`,
      `| expirations per second | ${fmt(e.expirationsPerSecond)} |`,
      `| purchases beside the sweep, p50 / p99 (ms) | ${fmt(e.purchaseP50Ms, 1)} / ${fmt(e.purchaseP99Ms, 1)} (${fmt(e.purchasesBeside)} purchases) |`,
      '',
    );
  }
  // Not in the default run: three redis-servers and six engine processes take over a minute.
  if (which.has('durability')) {
    process.stderr.write('durability: Redis AOF always vs everysec vs no persistence\n');
    const results = await durabilityBench(engine, {
      durationS: Number(process.env.BENCH_DURABILITY_S ?? 5),
      connections,
      rounds: Number(process.env.BENCH_DURABILITY_ROUNDS ?? 2),
    });
    json.durability = results;
    report.push('### Durability (REDIS_DURABILITY)', '', durabilityTable(results), '');
    if (results.some((r) => !r.converged)) process.exitCode = 1;
  }
}

try {
  for (let r = 1; r <= runs; r++) {
    process.stderr.write(`run ${r} of ${runs}\n`);
    await runOnce(r);
  }
} finally {
  await engine.stop();
}
const summary = summarize(perRun);
const header = [
  `# Benchmark results (${new Date().toISOString()})`,
  '',
  `${connections} connections, ${durationS} s per load, one machine, ${runs} run${runs > 1 ? 's' : ''}.`,
  '',
  '## Summary',
  '',
  summaryTable(summary),
  '',
  '![summary](summary.svg)',
  '',
];
mkdirSync('bench/results', { recursive: true });
writeFileSync(
  'bench/results/results.json',
  JSON.stringify(
    { at: new Date().toISOString(), connections, durationS, runs, summary, perRun },
    null,
    2,
  ),
);
writeFileSync('bench/results/summary.svg', summaryChart(summary, runs));
if (chart) writeFileSync('bench/results/results.svg', chart);
const markdown = [...header, ...reports.flat()].join('\n') + '\n';
writeFileSync('bench/results/results.md', markdown);
console.log(markdown);
