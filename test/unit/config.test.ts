import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/shared/config.js';

function problems(env: Record<string, string>): { variable: string; message: string }[] {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected the configuration to be refused');
}

describe('configuration', () => {
  it('has working defaults and is frozen', () => {
    const cfg = loadConfig({ NODE_ENV: 'development' });
    assert.equal(cfg.PORT, 3000);
    assert.equal(cfg.INVENTORY_PARTITIONS, 16);
    assert.deepEqual(cfg.KAFKA_BROKERS, ['127.0.0.1:9092']);
    assert.deepEqual(cfg.ALERT_WEBHOOK_URLS, []);
    assert.ok(Object.isFrozen(cfg));
    assert.throws(() => {
      (cfg as { PORT: number }).PORT = 1;
    });
  });

  it('parses lists and numbers from strings', () => {
    const cfg = loadConfig({
      NODE_ENV: 'test',
      KAFKA_BROKERS: '127.0.0.1:9092, 127.0.0.1:9094',
      ALERT_WEBHOOK_URLS: 'http://127.0.0.1:9000/a,https://example.test/b',
      PORT: '8080',
      REPAIR_ENABLED: 'true',
    });
    assert.deepEqual(cfg.KAFKA_BROKERS, ['127.0.0.1:9092', '127.0.0.1:9094']);
    assert.equal(cfg.ALERT_WEBHOOK_URLS.length, 2);
    assert.equal(cfg.PORT, 8080);
    assert.equal(cfg.REPAIR_ENABLED, true);
  });

  const bad: [string, Record<string, string>][] = [
    ['PORT', { PORT: 'eighty' }],
    ['PORT', { PORT: '70000' }],
    ['REDIS_URL', { REDIS_URL: 'http://127.0.0.1:6379' }],
    ['DATABASE_URL', { DATABASE_URL: 'not a url' }],
    ['KAFKA_BROKERS', { KAFKA_BROKERS: 'localhost' }],
    ['JWT_SECRET', { JWT_SECRET: 'short' }],
    ['ADMIN_TOKEN', { ADMIN_TOKEN: 'x' }],
    ['ALERT_WEBHOOK_URLS', { ALERT_WEBHOOK_URLS: 'ftp://x' }],
    ['ALERT_WEBHOOK_SECRET', { ALERT_WEBHOOK_SECRET: 'secret' }],
    ['INVENTORY_PARTITIONS', { INVENTORY_PARTITIONS: '0' }],
    ['REPAIR_ENABLED', { REPAIR_ENABLED: 'maybe' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'loud' }],
    [
      'ORDER_RETENTION_SECONDS',
      { ORDER_RETENTION_SECONDS: '3600', IDEMPOTENCY_TTL_SECONDS: '7200' },
    ],
    [
      'JWT_SECRET',
      {
        NODE_ENV: 'production',
        ADMIN_TOKEN: 'a-real-admin-token-123',
        ALERT_WEBHOOK_SECRET: 'whsec_cmVhbA==',
      },
    ],
  ];
  for (const [variable, env] of bad) {
    it(`refuses a bad ${variable} and names it (${JSON.stringify(env)})`, () => {
      const found = problems(env);
      assert.ok(
        found.some((p) => p.variable === variable),
        JSON.stringify(found),
      );
    });
  }

  it('refuses the published development secrets when NODE_ENV is not said', () => {
    const found = problems({});
    for (const v of [
      'JWT_SECRET',
      'ADMIN_TOKEN',
      'ALERT_WEBHOOK_SECRET',
      'ADMISSION_SECRET',
      'QUALIFICATION_SECRET',
    ])
      assert.ok(
        found.some((p) => p.variable === v),
        `${v}: ${JSON.stringify(found)}`,
      );
    const own = loadConfig({
      JWT_SECRET: 'a-real-jwt-secret-of-this-deployment-0001',
      ADMIN_TOKEN: 'a-real-admin-token-123',
      ALERT_WEBHOOK_SECRET: 'whsec_cmVhbA==',
      ADMISSION_SECRET: 'a-real-admission-secret-of-this-deployment',
      QUALIFICATION_SECRET: 'a-real-qualification-secret-shared-with-the-seller',
    });
    assert.equal(own.NODE_ENV, 'production');
  });

  it('never echoes a secret value in its message', () => {
    const [p] = problems({ JWT_SECRET: 'short-secret' });
    assert.ok(p && !p.message.includes('short-secret'));
  });

  it('stops the engine process with a message naming the variable', async () => {
    const { spawnSync } = await import('node:child_process');
    const main = new URL('../../src/main.js', import.meta.url).pathname;
    const r = spawnSync(process.execPath, [main], {
      env: { ...process.env, PORT: 'abc' },
      encoding: 'utf8',
      timeout: 20000,
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /PORT/);
  });
});
