// /readyz really checks Redis, PostgreSQL and Kafka, and names the one that is down.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { managesKafka, startKafkaBroker, stopKafkaBroker } from '../../tools/services/services.js';
import { startApi, testConfig, type RunningApi } from '../helpers.js';

describe('health and readiness', () => {
  let api: RunningApi;
  before(async () => {
    api = await startApi();
  });
  after(() => api.stop());

  it('/healthz answers without touching the services', async () => {
    const res = await fetch(`${api.url}/healthz`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'ok' });
  });

  it('/readyz says all three are up', async () => {
    const res = await fetch(`${api.url}/readyz`);
    const body = (await res.json()) as { checks: Record<string, { status: string }> };
    assert.equal(res.status, 200, JSON.stringify(body));
    for (const s of ['redis', 'postgres', 'kafka']) assert.equal(body.checks[s]?.status, 'up', s);
  });

  it('/readyz answers 503 naming Kafka when the broker is stopped', async (t) => {
    const cfg = testConfig();
    if (!managesKafka()) {
      // The broker belongs to someone else: do not stop it; point an engine at a dead address.
      t.diagnostic('Kafka is external: checking against an address where no broker listens');
      const dead = await startApi({ KAFKA_BROKERS: '127.0.0.1:1' });
      try {
        const res = await fetch(`${dead.url}/readyz`);
        const body = (await res.json()) as { checks: Record<string, { status: string }> };
        assert.equal(res.status, 503);
        assert.equal(body.checks.kafka?.status, 'down');
      } finally {
        await dead.stop();
      }
      return;
    }
    await stopKafkaBroker('SIGTERM');
    try {
      const res = await fetch(`${api.url}/readyz`);
      const body = (await res.json()) as {
        status: string;
        checks: Record<string, { status: string; error?: string }>;
      };
      assert.equal(res.status, 503, JSON.stringify(body));
      assert.equal(body.status, 'unavailable');
      assert.equal(body.checks.kafka?.status, 'down');
      assert.equal(body.checks.redis?.status, 'up');
      assert.equal(body.checks.postgres?.status, 'up');
    } finally {
      await startKafkaBroker(cfg.KAFKA_BROKERS, () => undefined);
    }
    const res = await fetch(`${api.url}/readyz`);
    assert.equal(res.status, 200, 'ready again once Kafka is back');
  });
});
