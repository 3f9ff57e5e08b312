// `npm test` and `npm run test:unit`. Unit tests need no service and run alone. The full
// run owns its data: a redis-server of its own, a PostgreSQL database and a Kafka topic and
// writer group made for this run and removed after it, so neither the outcome nor the time
// of a run depends on what demos, benches or other runs left in the shared services.
// Arguments other than `unit` pick test files by a part of their path
// (`npm test -- faults/crash`), with the same isolation.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { loadConfig } from '../src/shared/config.js';
import { migrate } from './db/migrate.js';
import { ensureDatabase, ensureTopic, servicesUp } from './services/services.js';
import { ownRedis } from '../test/support/redis-server.js';

process.env.NODE_ENV ??= 'test';
const tier = process.argv[2] === 'unit' ? 'unit' : 'all';
const only = tier === 'all' ? process.argv.slice(2) : [];
const testRoot = join(import.meta.dirname, '..', 'test');

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return testFiles(path);
      return name.endsWith('.test.js') ? [path] : [];
    })
    .sort();
}

function runTests(files: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...files], {
      env,
      stdio: 'inherit',
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

if (tier === 'unit') {
  process.exitCode = await runTests(testFiles(join(testRoot, 'unit')), process.env);
} else {
  const base = loadConfig(process.env);
  await servicesUp(base, (l) => console.log(l));
  const run = randomBytes(4).toString('hex');
  const database = new URL(base.DATABASE_URL);
  database.pathname = `/flashsale_test_${run}`;
  const topic = `flashsale.test-${run}`;
  const redis = await ownRedis(['--save', '', '--appendonly', 'no']);
  const env = {
    ...process.env,
    REDIS_URL: redis.url,
    DATABASE_URL: database.toString(),
    KAFKA_TOPIC: topic,
    KAFKA_WRITER_GROUP: `flashsale-test-${run}`,
  };
  console.log(
    `test run ${run}: redis ${redis.url}, database ${database.pathname.slice(1)}, topic ${topic}`,
  );
  const kafka = new Kafka({ brokers: base.KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  try {
    await ensureDatabase(env.DATABASE_URL, () => undefined);
    await migrate(env.DATABASE_URL);
    await ensureTopic(base.KAFKA_BROKERS, topic, base.INVENTORY_PARTITIONS, () => undefined);
    const files = testFiles(testRoot).filter(
      (f) => only.length === 0 || only.some((part) => relative(testRoot, f).includes(part)),
    );
    console.log(`${files.length} test files: ${files.map((f) => relative(testRoot, f)).join(' ')}`);
    process.exitCode = await runTests(files, env);
  } finally {
    await redis.close();
    const admin = kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteTopics({ topics: [topic], timeout: 10_000 }))
      .then(() => admin.deleteGroups([env.KAFKA_WRITER_GROUP]))
      .catch(() => undefined)
      .finally(() => admin.disconnect());
    const client = new pg.Client({ connectionString: base.DATABASE_URL });
    await client
      .connect()
      .then(() => client.query(`DROP DATABASE IF EXISTS "flashsale_test_${run}" WITH (FORCE)`))
      .catch((err: unknown) => console.error(`could not drop the run's database: ${String(err)}`))
      .finally(() => client.end());
  }
}
