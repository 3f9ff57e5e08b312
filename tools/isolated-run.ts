// Stores of a run's own: a PostgreSQL database (migrated), a Kafka topic and writer group made
// for the run and removed after it, and optionally a redis-server of its own. `npm test` and
// `npm run soak` both use it, so neither their outcome nor their time depends on what demos,
// benches or other runs left in the shared services, and a fresh checkout needs no setup step.
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import { loadConfig } from '../src/shared/config.js';
import { ownRedis, type OwnRedis } from '../test/support/redis-server.js';
import { migrate } from './db/migrate.js';
import { ensureDatabase, ensureTopic, servicesUp } from './services/services.js';

export interface IsolatedRun {
  id: string;
  /** The environment that points a process at the run's stores. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export async function isolatedRun(
  kind: 'test' | 'soak',
  opts: { ownRedis: boolean; log?: (line: string) => void },
): Promise<IsolatedRun> {
  const log = opts.log ?? (() => undefined);
  const base = loadConfig(process.env);
  await servicesUp(base, log);
  const id = randomBytes(4).toString('hex');
  const database = new URL(base.DATABASE_URL);
  database.pathname = `/flashsale_${kind}_${id}`;
  const dbName = database.pathname.slice(1);
  const topic = `flashsale.${kind}-${id}`;
  const group = `flashsale-${kind}-${id}`;
  const redis: OwnRedis | undefined = opts.ownRedis
    ? await ownRedis(['--appendonly', 'no'])
    : undefined;
  const env: Record<string, string> = {
    DATABASE_URL: database.toString(),
    KAFKA_TOPIC: topic,
    KAFKA_WRITER_GROUP: group,
    ...(redis ? { REDIS_URL: redis.url } : {}),
    // The engine processes a run starts log under a folder of the run's own, so runs side
    // by side do not write into each other's files.
    TEST_LOG_DIR: `.services/test-logs/${kind}-${id}`,
    // Tests and the model buy many times a second as one buyer; the rate-limit tests turn
    // the limit on for their own engines.
    RATE_LIMIT_BUYER_PER_S: process.env.RATE_LIMIT_BUYER_PER_S ?? '0',
  };
  const close = async () => {
    await redis?.close();
    const admin = new Kafka({ brokers: base.KAFKA_BROKERS, logLevel: logLevel.NOTHING }).admin();
    await admin
      .connect()
      .then(() => admin.deleteTopics({ topics: [topic], timeout: 10_000 }))
      .then(() => admin.deleteGroups([group]))
      .catch(() => undefined)
      .finally(() => admin.disconnect());
    const client = new pg.Client({ connectionString: base.DATABASE_URL });
    await client
      .connect()
      .then(() => client.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`))
      .catch((err: unknown) => log(`could not drop the run's database: ${String(err)}`))
      .finally(() => client.end());
  };
  try {
    await ensureDatabase(env.DATABASE_URL!, () => undefined);
    await migrate(env.DATABASE_URL!);
    await ensureTopic(base.KAFKA_BROKERS, topic, base.INVENTORY_PARTITIONS, () => undefined);
  } catch (err) {
    await close();
    throw err;
  }
  log(
    `${kind} run ${id}: ${redis ? `redis ${redis.url}, ` : ''}database ${dbName}, topic ${topic}, logs ${env.TEST_LOG_DIR}`,
  );
  return { id, env, close };
}
