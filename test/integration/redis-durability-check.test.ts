// The start-up durability check against real redis-servers of our own, each run with the
// persistence settings under test: what the engine reads, and that in production a weaker
// promise than REDIS_DURABILITY refuses to start (naming the variable and what Redis has)
// while a matching one starts. Also: services:up runs the Redis it starts itself with AOF.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { assess, readPersistence } from '../../src/clients/redis-durability.js';
import { freePort, startOwnRedis, type OwnRedis } from '../support/redis-server.js';

const mainJs = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const servicesCli = fileURLToPath(new URL('../../tools/services/cli.js', import.meta.url));

const production = {
  NODE_ENV: 'production',
  JWT_SECRET: 'a-production-jwt-secret-for-this-test-only-0123456789',
  ADMIN_TOKEN: 'a-production-admin-token-for-this-test',
  ALERT_WEBHOOK_SECRET: 'whsec_cHJvZHVjdGlvbi10ZXN0LXNlY3JldC0wMTIzNDU2Nzg5',
  ADMISSION_SECRET: 'a-production-admission-secret-for-this-test-only',
  QUALIFICATION_SECRET: 'a-production-qualification-secret-for-this-test',
  LOG_LEVEL: 'info',
  PORT: '0',
};

/**
 * Runs `main.js sweeper` against the given Redis: resolves with its exit code and output
 * if it exits within 20 s, or with `started` once it says so (then stops it with SIGTERM).
 */
async function runEngine(
  env: Record<string, string>,
  startedWhen: RegExp[] = [/"msg":"engine started"/],
): Promise<{ started: boolean; code: number | null; output: string }> {
  const child = spawn(process.execPath, [mainJs, 'sweeper'], {
    env: { ...process.env, ...production, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`neither started nor exited:\n${output}`)),
        20_000,
      );
      const onData = (b: Buffer) => {
        output += b.toString();
        if (startedWhen.every((re) => re.test(output))) {
          clearTimeout(timer);
          resolve({ started: true, code: null, output });
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      void exited.then((code) => {
        clearTimeout(timer);
        resolve({ started: false, code, output });
      });
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid!, 'SIGTERM');
      const forced = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 10_000);
      await exited;
      clearTimeout(forced);
    }
  }
}

describe('Redis durability check at start-up', { timeout: 180_000 }, () => {
  const servers: Record<'none' | 'everysec' | 'always' | 'hidden' | 'evicting', OwnRedis> =
    {} as never;
  before(async () => {
    servers.none = await startOwnRedis(['--appendonly', 'no']);
    servers.everysec = await startOwnRedis(['--appendonly', 'yes', '--appendfsync', 'everysec']);
    servers.always = await startOwnRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
    // A managed Redis that hides CONFIG.
    servers.hidden = await startOwnRedis(['--appendonly', 'yes', '--rename-command', 'CONFIG', '']);
    // A Redis set up as a cache: past its memory it drops keys, whatever it persists.
    servers.evicting = await startOwnRedis([
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--maxmemory',
      '256mb',
      '--maxmemory-policy',
      'allkeys-lru',
    ]);
  });
  after(async () => {
    for (const s of Object.values(servers)) await s.close();
  });

  it('reads the promise each Redis gives', async () => {
    const expect = {
      none: 'none',
      everysec: 'everysec',
      always: 'always',
      hidden: 'unknown',
      evicting: 'always',
    };
    for (const [name, s] of Object.entries(servers)) {
      const client = new Redis(s.url, { maxRetriesPerRequest: 1 });
      try {
        const report = assess(await readPersistence(client), 'everysec');
        assert.equal(
          report.actual,
          expect[name as keyof typeof expect],
          `${name}: ${report.redis}`,
        );
      } finally {
        client.disconnect();
      }
    }
  });

  it('production refuses a Redis weaker than REDIS_DURABILITY, naming it and what Redis has', async () => {
    const none = await runEngine({ REDIS_URL: servers.none.url, REDIS_DURABILITY: 'everysec' });
    assert.equal(none.started, false, none.output);
    assert.notEqual(none.code, 0);
    assert.match(none.output, /REDIS_DURABILITY=everysec/);
    assert.match(none.output, /appendonly=no/);

    const everysec = await runEngine({
      REDIS_URL: servers.everysec.url,
      REDIS_DURABILITY: 'always',
    });
    assert.equal(everysec.started, false, everysec.output);
    assert.notEqual(everysec.code, 0);
    assert.match(everysec.output, /REDIS_DURABILITY=always/);
    assert.match(everysec.output, /appendfsync=everysec/);
  });

  it('production refuses a Redis that will not tell its settings, unless REDIS_DURABILITY=none', async () => {
    const hidden = await runEngine({ REDIS_URL: servers.hidden.url, REDIS_DURABILITY: 'everysec' });
    assert.equal(hidden.started, false, hidden.output);
    assert.notEqual(hidden.code, 0);
    assert.match(hidden.output, /REDIS_DURABILITY=everysec/);
    assert.match(hidden.output, /CONFIG refused/);

    const accepted = await runEngine({ REDIS_URL: servers.hidden.url, REDIS_DURABILITY: 'none' });
    assert.equal(accepted.started, true, accepted.output);
  });

  it('production refuses a Redis that may evict keys, whatever REDIS_DURABILITY says', async () => {
    // An evicted order, holding or claim is an acknowledged purchase lost, a buyer past
    // their limit, or a retry that buys twice: no durability setting makes up for it.
    for (const required of ['always', 'none']) {
      const run = await runEngine({ REDIS_URL: servers.evicting.url, REDIS_DURABILITY: required });
      assert.equal(run.started, false, run.output);
      assert.notEqual(run.code, 0);
      assert.match(run.output, /maxmemory-policy=allkeys-lru/);
      assert.match(run.output, /noeviction/);
    }
    const dev = await runEngine({ NODE_ENV: 'development', REDIS_URL: servers.evicting.url }, [
      /"msg":"engine started"/,
      /"level":40.*may evict keys/,
    ]);
    assert.equal(dev.started, true, dev.output);
  });

  it('production starts when Redis gives at least the promise, and says which holds', async () => {
    const always = await runEngine({ REDIS_URL: servers.always.url, REDIS_DURABILITY: 'always' });
    assert.equal(always.started, true, always.output);
    assert.match(always.output, /always: an acknowledged purchase survives a Redis crash/);

    const stronger = await runEngine({
      REDIS_URL: servers.always.url,
      REDIS_DURABILITY: 'everysec',
    });
    assert.equal(stronger.started, true, stronger.output);
  });

  it('outside production a weaker Redis starts with a warning', async () => {
    const warning =
      /"level":40.*none: a restart loses every purchase not yet in PostgreSQL; weaker than REDIS_DURABILITY=always/;
    const dev = await runEngine(
      { NODE_ENV: 'development', REDIS_URL: servers.none.url, REDIS_DURABILITY: 'always' },
      [/"msg":"engine started"/, warning],
    );
    assert.equal(dev.started, true, dev.output);
  });

  it('services:up runs the Redis it starts itself with AOF (fsync every second)', async () => {
    const state = mkdtempSync(join(tmpdir(), 'flashsale-services-'));
    const port = await freePort();
    const env = {
      ...process.env,
      FLASHSALE_STATE_DIR: state,
      REDIS_URL: `redis://127.0.0.1:${port}`,
    };
    try {
      const up = spawnSync(process.execPath, [servicesCli, 'up'], { env, encoding: 'utf8' });
      assert.equal(up.status, 0, up.stdout + up.stderr);
      assert.match(up.stdout, /redis: started/);
      const client = new Redis(env.REDIS_URL, { maxRetriesPerRequest: 1 });
      try {
        const report = assess(await readPersistence(client), 'everysec');
        assert.equal(report.actual, 'everysec', report.redis);
      } finally {
        client.disconnect();
      }
    } finally {
      spawnSync(process.execPath, [servicesCli, 'down'], { env, stdio: 'ignore' });
      rmSync(state, { recursive: true, force: true });
    }
  });
});
