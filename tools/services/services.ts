// Local services without Docker: reuses Redis, PostgreSQL and Kafka when they answer at
// the configured addresses, otherwise installs (Debian packages) and starts them on
// loopback. Kafka is a real Apache Kafka broker run from Maven Central jars (single-node
// KRaft). `down` stops only what `up` started; the record of that lives in .services/.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Kafka, logLevel } from 'kafkajs';
import pg from 'pg';
import type { Config } from '../../src/shared/config.js';

export const KAFKA_VERSION = '3.9.1';
const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const pomFile = join(projectRoot, 'tools/services/kafka-pom.xml');
export const stateDir = process.env.FLASHSALE_STATE_DIR ?? join(projectRoot, '.services');
const jarCache = join(
  process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'),
  'flashsale-engine',
  `kafka-${KAFKA_VERSION}`,
  'libs',
);

type Log = (line: string) => void;

interface Started {
  redis?: { pidFile: string; port: number };
  postgres?: { version: string; cluster: string };
  kafka?: { pidFile: string };
}

const startedFile = () => join(stateDir, 'started.json');

function readStarted(): Started {
  try {
    return JSON.parse(readFileSync(startedFile(), 'utf8')) as Started;
  } catch {
    return {};
  }
}

function writeStarted(s: Started): void {
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(startedFile(), JSON.stringify(s, null, 2));
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.startsWith('127.') || host === '::1' || host === '[::1]';
}

function has(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' }).status === 0;
}

let aptUpdated = false;
function aptInstall(log: Log, ...packages: string[]): void {
  log(`installing ${packages.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore', env });
    aptUpdated = true;
  }
  execFileSync('apt-get', ['install', '-y', '-qq', ...packages], { stdio: 'ignore', env });
}

/** A busy machine (a JVM starting beside us) can delay a healthy service's answer. */
async function answersWithin(probe: () => Promise<boolean>, attempts = 3): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (await probe()) return true;
    if (i < attempts - 1) await sleep(500);
  }
  return false;
}

async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(250);
  }
  throw new Error(`${what} did not answer within ${Math.round(timeoutMs / 1000)} s`);
}

// ---------------------------------------------------------------- Redis

export async function redisAnswers(url: string): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function redisUp(cfg: Config, log: Log): Promise<void> {
  if (cfg.REDIS_CLUSTER_NODES?.length) {
    log('redis: cluster mode configured; start the cluster yourself (see README)');
    return;
  }
  if (await answersWithin(() => redisAnswers(cfg.REDIS_URL))) {
    log(`redis: reusing ${new URL(cfg.REDIS_URL).host}`);
    return;
  }
  const url = new URL(cfg.REDIS_URL);
  if (!isLoopback(url.hostname))
    throw new Error(`redis at ${url.host} does not answer and is not local`);
  if (!has('redis-server')) aptInstall(log, 'redis-server');
  const port = Number(url.port || 6379);
  const dir = join(stateDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const pidFile = join(dir, `redis-${port}.pid`);
  execFileSync(
    'redis-server',
    [
      '--daemonize',
      'yes',
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      // AOF, fsync once a second: the REDIS_DURABILITY default's promise (README, Durability).
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--dir',
      dir,
      '--pidfile',
      pidFile,
      '--logfile',
      join(dir, 'redis.log'),
    ],
    { stdio: 'ignore' },
  );
  await waitFor('redis', () => redisAnswers(cfg.REDIS_URL), 20000);
  writeStarted({ ...readStarted(), redis: { pidFile, port } });
  log(`redis: started on 127.0.0.1:${port}`);
}

// ---------------------------------------------------------------- PostgreSQL

function adminUrl(databaseUrl: string): string {
  const u = new URL(databaseUrl);
  u.pathname = '/postgres';
  return u.toString();
}

export async function postgresAnswers(databaseUrl: string): Promise<boolean> {
  const client = new pg.Client({
    connectionString: adminUrl(databaseUrl),
    connectionTimeoutMillis: 3000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function postgresUp(cfg: Config, log: Log): Promise<void> {
  const url = new URL(cfg.DATABASE_URL);
  if (await answersWithin(() => postgresAnswers(cfg.DATABASE_URL))) {
    log(`postgres: reusing ${url.host}`);
  } else {
    if (!isLoopback(url.hostname))
      throw new Error(`postgres at ${url.host} does not answer and is not local`);
    if (!has('pg_ctlcluster')) aptInstall(log, 'postgresql', 'postgresql-client');
    const port = Number(url.port || 5432);
    const versions = readdirSync('/usr/lib/postgresql').sort((a, b) => Number(b) - Number(a));
    const version = versions[0];
    if (!version) throw new Error('postgres: no server version under /usr/lib/postgresql');
    const cluster = 'main';
    if (!existsSync(`/etc/postgresql/${version}/${cluster}`)) {
      // Loopback-only development cluster: trust auth so the default URL needs no password.
      execFileSync(
        'pg_createcluster',
        [version, cluster, '-p', String(port), '--', '--auth-host=trust', '--auth-local=trust'],
        { stdio: 'ignore' },
      );
    }
    execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, cluster, 'start'], {
      stdio: 'ignore',
    });
    await waitFor('postgres', () => postgresAnswers(cfg.DATABASE_URL), 30000);
    writeStarted({ ...readStarted(), postgres: { version, cluster } });
    log(`postgres: started cluster ${version}/${cluster} on 127.0.0.1:${port}`);
  }
  await ensureDatabase(cfg.DATABASE_URL, log);
}

export async function ensureDatabase(databaseUrl: string, log: Log): Promise<void> {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.slice(1));
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(name))
    throw new Error(`database name "${name}" is not allowed`);
  const client = new pg.Client({ connectionString: adminUrl(databaseUrl) });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`CREATE DATABASE "${name}"`).catch((err: { code?: string }) => {
        if (err.code !== '42P04') throw err; // created concurrently
      });
      log(`postgres: created database ${name}`);
    }
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------- Kafka

function kafkaProbe(brokers: string[]) {
  return new Kafka({
    clientId: 'flashsale-services',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1000,
    requestTimeout: 3000,
    retry: { retries: 0 },
  });
}

export async function kafkaAnswers(brokers: string[]): Promise<boolean> {
  const admin = kafkaProbe(brokers).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Fetches the broker jars from Maven Central once; later runs reuse the cache. */
export function ensureKafkaJars(log: Log): string {
  const marker = join(jarCache, '.complete');
  if (existsSync(marker)) return jarCache;
  if (!has('java')) aptInstall(log, 'openjdk-17-jre-headless');
  if (!has('mvn')) aptInstall(log, 'maven');
  log(`kafka: fetching Apache Kafka ${KAFKA_VERSION} jars from Maven Central`);
  mkdirSync(jarCache, { recursive: true });
  execFileSync(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      pomFile,
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      `-DoutputDirectory=${jarCache}`,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  writeFileSync(marker, new Date().toISOString());
  return jarCache;
}

/** The shared broker's folder; a drill's own broker (test/support/kafka-broker.ts) has another. */
function kafkaDir(): string {
  return join(stateDir, 'kafka');
}

function kafkaPidFile(dir = kafkaDir()): string {
  return join(dir, 'kafka.pid');
}

export function kafkaLogFile(dir = kafkaDir()): string {
  return join(dir, 'kafka.log');
}

function writeKafkaConfig(port: number, dir: string): string {
  mkdirSync(join(dir, 'data'), { recursive: true });
  const controllerPort = port + 1;
  const props = [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${join(dir, 'data')}`,
    'num.partitions=1',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=8',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    'log.retention.hours=24',
  ].join('\n');
  const file = join(dir, 'server.properties');
  writeFileSync(file, props + '\n');
  writeFileSync(
    join(dir, 'log4j.properties'),
    [
      'log4j.rootLogger=WARN, stdout',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.kafka.server.KafkaServer=INFO',
      'log4j.logger.kafka.server.BrokerServer=INFO',
    ].join('\n') + '\n',
  );
  return file;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Starts the broker process (storage formatted once), detached, logging to a file. */
export async function startKafkaBroker(
  brokers: string[],
  log: Log,
  dir = kafkaDir(),
): Promise<void> {
  const first = brokers[0] ?? '127.0.0.1:9092';
  const port = Number(first.split(':')[1]);
  const jars = ensureKafkaJars(log);
  const propsFile = writeKafkaConfig(port, dir);
  const classpath = `${jars}/*`;
  if (!existsSync(join(dir, 'data', 'meta.properties'))) {
    const uuid = execFileSync(
      'java',
      ['-cp', classpath, 'kafka.tools.StorageTool', 'random-uuid'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    ).trim();
    execFileSync(
      'java',
      [
        '-cp',
        classpath,
        'kafka.tools.StorageTool',
        'format',
        '--standalone',
        '-t',
        uuid,
        '-c',
        propsFile,
      ],
      { stdio: 'ignore' },
    );
  }
  const out = openSync(kafkaLogFile(dir), 'a');
  const child = spawn(
    'java',
    [
      '-Xms256m',
      '-Xmx512m',
      '-XX:+UseG1GC',
      '-Djava.awt.headless=true',
      `-Dlog4j.configuration=file:${join(dir, 'log4j.properties')}`,
      '-cp',
      classpath,
      'kafka.Kafka',
      propsFile,
    ],
    { detached: true, stdio: ['ignore', out, out] },
  );
  closeSync(out);
  child.unref();
  if (!child.pid) throw new Error('kafka: the broker process did not start');
  writeFileSync(kafkaPidFile(dir), String(child.pid));
  const pid = child.pid;
  await waitFor(
    'kafka',
    async () => {
      if (!pidAlive(pid)) throw new Error(`kafka: the broker exited; see ${kafkaLogFile(dir)}`);
      return kafkaAnswers(brokers);
    },
    120000,
  );
}

/** Stops the broker this project started: SIGTERM (graceful) or SIGKILL (crash drill). */
export async function stopKafkaBroker(
  signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM',
  dir = kafkaDir(),
): Promise<boolean> {
  const pid = readPid(kafkaPidFile(dir));
  if (!pid || !pidAlive(pid)) return false;
  process.kill(pid, signal);
  const deadline = Date.now() + 30000;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(100);
  if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  while (pidAlive(pid)) await sleep(50);
  return true;
}

/** Freezes (SIGSTOP) or thaws (SIGCONT) the broker this project started: a stall, not a crash. */
export function pauseKafkaBroker(paused: boolean, dir = kafkaDir()): boolean {
  const pid = readPid(kafkaPidFile(dir));
  if (!pid || !pidAlive(pid)) return false;
  process.kill(pid, paused ? 'SIGSTOP' : 'SIGCONT');
  return true;
}

export function managesKafka(): boolean {
  const pid = readPid(kafkaPidFile());
  return pid !== undefined && pidAlive(pid);
}

async function kafkaUp(cfg: Config, log: Log): Promise<void> {
  if (await answersWithin(() => kafkaAnswers(cfg.KAFKA_BROKERS), 2)) {
    log(`kafka: reusing ${cfg.KAFKA_BROKERS.join(',')}`);
  } else {
    const host = (cfg.KAFKA_BROKERS[0] ?? '').split(':')[0] ?? '';
    if (!isLoopback(host))
      throw new Error(`kafka at ${cfg.KAFKA_BROKERS.join(',')} does not answer and is not local`);
    await startKafkaBroker(cfg.KAFKA_BROKERS, log);
    writeStarted({ ...readStarted(), kafka: { pidFile: kafkaPidFile() } });
    log(`kafka: started Apache Kafka ${KAFKA_VERSION} (KRaft) on ${cfg.KAFKA_BROKERS[0]}`);
  }
  await ensureTopic(cfg.KAFKA_BROKERS, cfg.KAFKA_TOPIC, cfg.INVENTORY_PARTITIONS, log);
}

/** The event topic has one Kafka partition per inventory partition. */
export async function ensureTopic(
  brokers: string[],
  topic: string,
  partitions: number,
  log: Log,
): Promise<void> {
  const admin = new Kafka({
    clientId: 'flashsale-services',
    brokers,
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    const existing = await admin.listTopics();
    if (!existing.includes(topic)) {
      // kafkajs's own wait for leaders gives up with UNKNOWN_TOPIC_OR_PARTITION when the
      // broker is busy (several runs creating topics at once): wait here instead.
      await admin.createTopics({
        topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
        waitForLeaders: false,
      });
      const deadline = Date.now() + 60_000;
      for (;;) {
        const meta = await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => undefined);
        const ready = meta?.topics[0]?.partitions.filter((p) => p.leader >= 0).length ?? 0;
        if (ready >= partitions) break;
        if (Date.now() > deadline)
          throw new Error(`kafka: topic ${topic} has no leader for every partition after 60 s`);
        await sleep(200);
      }
      log(`kafka: created topic ${topic} with ${partitions} partitions`);
      return;
    }
    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    const have = meta.topics[0]?.partitions.length ?? 0;
    if (have < partitions) {
      await admin.createPartitions({ topicPartitions: [{ topic, count: partitions }] });
      log(`kafka: topic ${topic} grown from ${have} to ${partitions} partitions`);
    } else if (have > partitions) {
      throw new Error(
        `kafka: topic ${topic} has ${have} partitions but INVENTORY_PARTITIONS is ${partitions}`,
      );
    }
  } finally {
    await admin.disconnect();
  }
}

// ---------------------------------------------------------------- commands

export async function servicesUp(cfg: Config, log: Log = console.log): Promise<void> {
  // Redis and PostgreSQL start in seconds; Kafka (a JVM) is the long pole, so all three go at once.
  await Promise.all([redisUp(cfg, log), postgresUp(cfg, log), kafkaUp(cfg, log)]);
}

export async function servicesDown(log: Log = console.log): Promise<void> {
  const started = readStarted();
  if (started.kafka && (await stopKafkaBroker('SIGTERM'))) log('kafka: stopped');
  if (started.redis) {
    const pid = readPid(started.redis.pidFile);
    if (pid && pidAlive(pid)) {
      process.kill(pid, 'SIGTERM');
      while (pidAlive(pid)) await sleep(50);
      log('redis: stopped');
    }
  }
  if (started.postgres) {
    const { version, cluster } = started.postgres;
    spawnSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, cluster, 'stop'], {
      stdio: 'ignore',
    });
    log(`postgres: stopped cluster ${version}/${cluster}`);
  }
  writeStarted({});
  if (!started.kafka && !started.redis && !started.postgres)
    log('nothing to stop: no service was started by services:up');
}

export async function servicesStatus(cfg: Config, log: Log = console.log): Promise<boolean> {
  const started = readStarted();
  const [redis, postgres, kafka] = await Promise.all([
    redisAnswers(cfg.REDIS_URL),
    postgresAnswers(cfg.DATABASE_URL),
    kafkaAnswers(cfg.KAFKA_BROKERS),
  ]);
  const who = (mine: boolean) => (mine ? 'started by services:up' : 'external');
  log(
    `redis     ${redis ? 'up  ' : 'DOWN'}  ${new URL(cfg.REDIS_URL).host}  ${who(!!started.redis)}`,
  );
  log(
    `postgres  ${postgres ? 'up  ' : 'DOWN'}  ${new URL(cfg.DATABASE_URL).host}  ${who(!!started.postgres)}`,
  );
  log(
    `kafka     ${kafka ? 'up  ' : 'DOWN'}  ${cfg.KAFKA_BROKERS.join(',')}  ${who(!!started.kafka)}`,
  );
  return redis && postgres && kafka;
}
