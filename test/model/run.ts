// Runs the model-based test: a world of engine processes on a Redis of its own, random
// command sequences (with faults) against it and the model side by side, and after each
// sequence a check of both stores against the model. Every run prints its seed; fast-check
// shrinks a failure to a minimal command list and prints it with the seed and path.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Engine } from '../../src/engine.js';
import { testConfig, waitForDrain } from '../helpers.js';
import { alertReceiver } from '../support/alert-receiver.js';
import { ownKafka } from '../support/kafka-broker.js';
import { killAll, supervise } from '../support/processes.js';
import { ownRedis } from '../support/redis-server.js';
import { commandArbitrary, parseStory, Real, type Cmd, type World } from './driver.js';
import { Model } from './model.js';

export interface ModelRunOptions {
  seed?: number;
  path?: string;
  /** The counterexample's replayPath: which of its commands ran (needed with `path`). */
  replayPath?: string;
  /** A printed command list, run once as it is (no generation, no shrinking). */
  story?: string;
  runs: number;
  maxCommands: number;
  /** Stop starting new runs after this long (the soak's budget). */
  timeLimitMs?: number;
  /**
   * Shrink for at most this long after the first failure, then report the smallest failing
   * list found so far (every real candidate costs a run against the engine).
   */
  shrinkLimitMs?: number;
  log?: (line: string) => void;
}

export interface ModelRunReport {
  seed: number;
  /** Runs executed, shrinking included. */
  runs: number;
  /** The run (1-based) that failed first, before any shrinking. */
  firstFailedRun?: number;
  /** Commands run (a command whose precondition failed is not run). */
  commands: number;
  faults: number;
  /** Where the time went: per command kind (and the end-of-run check), count and seconds. */
  time: Map<string, { count: number; seconds: number }>;
  failure?: string;
}

/** `buy(u1, s0, …)` -> `buy`; a nemesis keeps its fault: `nemesis(kill-relay)`. */
const kindOf = (c: { toString(): string }) => {
  const s = c.toString();
  return s.startsWith('nemesis(') ? /^nemesis\([a-z-]+/.exec(s)![0] + ')' : s.split('(')[0]!;
};

function timeInto(report: ModelRunReport, kind: string, since: number): void {
  const t = report.time.get(kind) ?? { count: 0, seconds: 0 };
  t.count += 1;
  t.seconds += (performance.now() - since) / 1000;
  report.time.set(kind, t);
}

async function startWorld(): Promise<World> {
  const redis = await ownRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
  // Kafka's faults need a broker of the run's own: stopping or freezing the shared one would
  // break every other test, demo and soak using it. SOAK_KAFKA_NEMESIS=0 runs on the shared
  // broker, without those faults.
  const base = testConfig();
  const alerts = await alertReceiver(base.ALERT_WEBHOOK_SECRET);
  const kafka =
    process.env.SOAK_KAFKA_NEMESIS === '0'
      ? undefined
      : await ownKafka(base.KAFKA_TOPIC, base.INVENTORY_PARTITIONS);
  const env = {
    REDIS_URL: redis.url,
    SOLD_OUT_CACHE_MS: '0',
    SWEEP_INTERVAL_MS: '200',
    REPAIR_ENABLED: 'true',
    RECONCILE_INTERVAL_MS: '500',
    // Short, so a Kafka fault's lag opens an incident now and then (to be resolved).
    LAG_ALERT_AFTER_MS: '3000',
    ALERT_WEBHOOK_URLS: alerts.url,
    WEBHOOK_BASE_BACKOFF_MS: '100',
    ...(kafka ? { KAFKA_BROKERS: kafka.brokers.join(',') } : {}),
  };
  const reader = new Engine(testConfig(env), 'model');
  const cfg = reader.cfg;
  const world: World = {
    apis: [
      supervise('model-api-a', ['api'], () => env),
      supervise('model-api-b', ['api'], () => env),
    ],
    relay: supervise('model-relay', ['relay'], () => env),
    writer: supervise('model-writer', ['writer'], () => env),
    sweeper: supervise('model-sweeper', ['sweeper'], () => env),
    reconciler: supervise('model-reconciler', ['reconciler'], () => env),
    alerts,
    redis,
    reader,
    adminToken: cfg.ADMIN_TOKEN,
    faults: 0,
    commands: 0,
    tag: randomBytes(4).toString('hex'),
    ...(kafka ? { kafka } : {}),
  };
  await Promise.all(world.apis.map((a) => a.proc.url));
  return world;
}

async function stopWorld(w: World): Promise<void> {
  await Promise.all(
    [...w.apis, w.relay, w.writer, w.sweeper, w.reconciler].map((p) =>
      p.stop().catch(() => undefined),
    ),
  );
  killAll();
  await w.reader.stop();
  await w.redis.close();
  await w.kafka?.close();
  await w.alerts.close();
}

/** After a sequence: drain, then both stores must hold exactly what the model holds. */
async function finalCheck(m: Model, r: Real): Promise<void> {
  // Let every short reservation run out and be swept, so no answer depends on the clock.
  // (A paused SKU's stay held: the sweeper returns nothing of it until it resumes.)
  const due = [...m.orders.values()]
    .filter(
      (o) =>
        o.status === 'reserved' && !m.skus.get(o.sku)!.paused && o.expiresAt < Date.now() + 120_000,
    )
    .map((o) => m.sweptBy(o));
  if (due.length) await sleep(Math.max(0, Math.max(...due) + 100 - Date.now()));
  m.sweep(Date.now());
  assert.deepEqual(m.check(), [], 'the model keeps its own invariants');
  const skus = [...m.skus.keys()];
  if (skus.length === 0) return;
  const engine = r.world.reader;
  const compared = await waitForDrain(engine, skus, 90_000);
  for (const c of compared) {
    const s = m.skus.get(c.sku)!;
    const want = { available: s.available, supplied: s.supplied, sequence: s.seq };
    assert.deepEqual(c.redis, want, `${c.sku}: Redis holds what the model holds`);
    assert.deepEqual(
      { available: c.db.available, supplied: c.db.supplied, sequence: c.db.sequence },
      want,
      `${c.sku}: PostgreSQL holds what the model holds`,
    );
    assert.equal(c.conservationGap, 0, `${c.sku}: conservation in PostgreSQL`);
    // Each buyer's units held, as the per-user limit reads them (a count of 0 is none).
    const held = await engine.redis.hgetall(engine.keys.forSku(c.sku).users);
    assert.deepEqual(
      new Map(Object.entries(held).filter(([, n]) => n !== '0')),
      new Map([...s.holders].map(([u, n]) => [u, String(n)])),
      `${c.sku}: Redis holds each buyer's units as the model does`,
    );
  }
  const rows = await engine.db.order.findMany({ where: { skuId: { in: skus } } });
  assert.deepEqual(
    new Map(rows.map((o) => [o.id, `${o.skuId} ${o.userId} ${o.quantity} ${o.status}`])),
    new Map(
      [...m.orders.values()].map((o) => [o.id, `${o.sku} ${o.user} ${o.quantity} ${o.status}`]),
    ),
    'PostgreSQL holds every order the model holds, row by row, and no other',
  );
  const anomalies = await engine.db.pipelineAnomaly.findMany({ where: { skuId: { in: skus } } });
  assert.deepEqual(anomalies, [], 'no anomaly');
  // The stores agree now, so the reconciler must resolve whatever the faults made it open
  // (Redis behind after a loss, lag while Kafka was down) within a few passes.
  const open = () =>
    engine.db.alertIncident.findMany({
      where: { skuId: { in: skus }, status: 'open' },
      select: { skuId: true, kind: true, detail: true },
    });
  const deadline = Date.now() + 30_000;
  let left = await open();
  while (left.length > 0 && Date.now() < deadline) {
    await sleep(500);
    left = await open();
  }
  assert.deepEqual(left, [], 'no incident left open once the stores agree');
  // And the operator heard of each: an alert when it opened, another when it resolved.
  const incidents = await engine.db.alertIncident.findMany({
    where: { skuId: { in: skus } },
    select: { id: true, skuId: true, kind: true },
  });
  const unheard = () =>
    incidents.flatMap((i) =>
      (['incident.opened', 'incident.resolved'] as const)
        .filter(
          (type) => !r.world.alerts.got.some((g) => g.type === type && g.data.id === String(i.id)),
        )
        .map((type) => `${type} ${i.skuId} ${i.kind}`),
    );
  const heardBy = Date.now() + 30_000;
  while (unheard().length > 0 && Date.now() < heardBy) await sleep(200);
  assert.deepEqual(unheard(), [], 'an alert for every incident opened and resolved');
}

export async function runModel(opts: ModelRunOptions): Promise<ModelRunReport> {
  const log = opts.log ?? (() => undefined);
  const seed = opts.seed ?? Math.floor(Math.random() * 2 ** 31);
  const world = await startWorld();
  const report: ModelRunReport = { seed, runs: 0, commands: 0, faults: 0, time: new Map() };
  const started = performance.now();
  const shrinkLimitMs = opts.shrinkLimitMs ?? 15 * 60_000;
  let failedAt: number | undefined;

  /** One sequence against a fresh model and fresh names, then the end-of-run check. */
  const oneRun = async (cmds: Iterable<Cmd>) => {
    // Names unique to this process: PostgreSQL keeps every earlier run's SKUs.
    const real = new Real(world, `m${world.tag}r${report.runs}`);
    report.runs += 1;
    const model = new Model();
    const before = world.faults;
    // Each command timed by kind; fast-check's own wrappers still record what ran.
    const timed = [...cmds].map((c) => ({
      check: (m: Readonly<Model>) => c.check(m),
      run: async (m: Model, r: Real) => {
        const t0 = performance.now();
        try {
          await c.run(m, r);
        } finally {
          report.commands += 1;
          timeInto(report, kindOf(c), t0);
        }
      },
      toString: () => c.toString(),
    }));
    try {
      await fc.asyncModelRun(() => ({ model, real }), timed);
      const t0 = performance.now();
      await finalCheck(model, real);
      timeInto(report, 'end-of-run check', t0);
    } catch (e) {
      // Past the time limit fast-check has given up on this run and the world is being
      // stopped under it: what fails now is the teardown ('Connection is closed'), not
      // the engine, and fast-check counts no failure.
      if (opts.timeLimitMs !== undefined && performance.now() - started >= opts.timeLimitMs) {
        log(`run ${report.runs} cut short by the time limit`);
        throw e;
      }
      if (failedAt === undefined) {
        // The story as it failed, before shrinking: printed now, in case shrinking is cut
        // short.
        failedAt = performance.now();
        log(`run ${report.runs} failed: ${String(e).split('\n')[0]}`);
        log(`  commands: ${String(cmds)}`);
        if (!opts.story) log(`  shrinking for at most ${(shrinkLimitMs / 60_000).toFixed(0)} min`);
      }
      throw e;
    } finally {
      report.faults += world.faults - before;
    }
    // A long soak says how far it has got (a failing run throws before this line).
    log(
      `run ${report.runs}: ${report.commands} commands, ${report.faults} faults so far, ` +
        `${((performance.now() - started) / 60_000).toFixed(1)} min`,
    );
  };

  try {
    if (opts.story) {
      const cmds = parseStory(opts.story);
      log(`model: one story of ${cmds.length} commands`);
      try {
        await oneRun(cmds);
      } catch (e) {
        report.firstFailedRun = 1;
        report.failure = e instanceof Error ? (e.stack ?? e.message) : String(e);
      }
      return report;
    }
    log(`model: seed ${seed}, up to ${opts.runs} runs of up to ${opts.maxCommands} commands`);
    const result = await fc.check(
      fc.asyncProperty(
        fc.commands(commandArbitrary(), {
          maxCommands: opts.maxCommands,
          size: 'max',
          ...(opts.replayPath ? { replayPath: opts.replayPath } : {}),
        }),
        async (cmds) => {
          // Out of shrinking time: skip every further candidate, so fast-check settles on
          // the smallest failing list it has.
          if (failedAt !== undefined && performance.now() - failedAt > shrinkLimitMs) fc.pre(false);
          await oneRun(cmds);
        },
      ),
      {
        seed,
        numRuns: opts.runs,
        ...(opts.path ? { path: opts.path } : {}),
        ...(opts.timeLimitMs
          ? { interruptAfterTimeLimit: opts.timeLimitMs, markInterruptAsFailure: false }
          : {}),
      },
    );
    if (result.failed) {
      report.firstFailedRun = result.numRuns;
      const err = result.errorInstance;
      const shrunk = String(result.counterexample?.[0] ?? '');
      const replay = /replayPath="([^"]+)"/.exec(shrunk)?.[1];
      report.failure = [
        fc.defaultReportMessage(result) ?? 'failed',
        `replay: npm run soak -- --seed ${seed} --path "${result.counterexamplePath}"` +
          (replay ? ` --replay-path "${replay}"` : ''),
        `replay alone: npm run soak -- --story '${shrunk.replace(/\s*\/\*.*?\*\//g, '')}'`,
        err instanceof Error ? (err.stack ?? err.message) : String(err),
      ].join('\n');
    }
  } finally {
    await stopWorld(world);
  }
  return report;
}
