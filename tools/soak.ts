// `npm run soak -- [--seed S] [--runs N] [--commands C] [--minutes M] [--shrink-minutes K]
// [--path P --replay-path R | --story 'cmd,cmd,…']` (or SOAK_SEED, SOAK_RUNS): the
// model-based test for as long as asked. Ends with one line: runs, commands, faults
// injected, failures; exits 1 on a failure, after printing the command list as it failed and
// shrunk (for at most K minutes, default 15). --story runs one printed list as it is.
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { runModel } from '../test/model/run.js';
import { isolatedRun } from './isolated-run.js';

process.env.NODE_ENV ??= 'test';
const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    runs: { type: 'string' },
    commands: { type: 'string' },
    minutes: { type: 'string' },
    'shrink-minutes': { type: 'string' },
    path: { type: 'string' },
    'replay-path': { type: 'string' },
    story: { type: 'string' },
  },
});
const seed = values.seed ?? process.env.SOAK_SEED;
// The model's world has a Redis of its own; the database, topic and group are the run's too.
const stores = await isolatedRun('soak', { ownRedis: false, log: (l) => console.log(l) });
Object.assign(process.env, stores.env);
let lastRun = 'no run finished';
const log = (line: string) => {
  if (line.startsWith('run ')) lastRun = line;
  console.log(line);
};
// Stopped early (Ctrl-C, a kill): say how far it got, drop the soak's database, and exit, so
// the 'exit' hooks take the engine processes, Redis and Kafka this soak started with it.
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    console.log(`soak: stopped by ${signal} after: ${lastRun}`);
    void Promise.race([stores.close().catch(() => undefined), sleep(5000)]).then(() =>
      process.exit(signal === 'SIGINT' ? 130 : 143),
    );
  });
const report = await runModel({
  seed: seed !== undefined ? Number(seed) : undefined,
  runs: Number(values.runs ?? process.env.SOAK_RUNS ?? 20),
  maxCommands: Number(values.commands ?? 60),
  ...(values.minutes ? { timeLimitMs: Number(values.minutes) * 60_000 } : {}),
  ...(values['shrink-minutes'] ? { shrinkLimitMs: Number(values['shrink-minutes']) * 60_000 } : {}),
  ...(values.path ? { path: values.path } : {}),
  ...(values['replay-path'] ? { replayPath: values['replay-path'] } : {}),
  ...(values.story ? { story: values.story } : {}),
  log,
}).finally(() => stores.close());
if (report.failure) console.log(report.failure);
const spent = [...report.time].sort((a, b) => b[1].seconds - a[1].seconds);
const total = spent.reduce((n, [, t]) => n + t.seconds, 0);
console.log('time by command kind:');
for (const [kind, t] of spent)
  console.log(
    `  ${kind.padEnd(28)} ${String(t.count).padStart(5)} × ${(t.seconds / t.count).toFixed(2)} s = ${t.seconds.toFixed(0)} s (${((100 * t.seconds) / total).toFixed(0)}%)`,
  );
console.log(
  `soak: ${values.story ? 'one story' : `seed ${report.seed}`}, ${report.runs} runs, ${report.commands} commands, ${report.faults} faults injected, ${report.failure ? 1 : 0} failures` +
    (report.firstFailedRun ? ` (first at run ${report.firstFailedRun}, before shrinking)` : ''),
);
process.exit(report.failure ? 1 : 0);
