// /readyz really checks Redis, PostgreSQL and Kafka, and names the one that is down.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startApi, testConfig, type RunningApi } from '../helpers.js';
import { ownKafka } from '../support/kafka-broker.js';

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

  it('/readyz answers 503 naming Kafka when the broker is stopped, 200 once it is back', async () => {
    // A broker of the test's own, so stopping it disturbs no other test or run.
    const cfg = testConfig();
    const kafka = await ownKafka(cfg.KAFKA_TOPIC, cfg.INVENTORY_PARTITIONS);
    const own = await startApi({ KAFKA_BROKERS: kafka.brokers.join(',') });
    const readyz = async () => {
      const res = await fetch(`${own.url}/readyz`);
      return {
        status: res.status,
        body: (await res.json()) as {
          status: string;
          checks: Record<string, { status: string; error?: string }>;
        },
      };
    };
    try {
      assert.equal((await readyz()).status, 200, 'ready with its broker up');
      await kafka.kill();
      const { status, body } = await readyz();
      assert.equal(status, 503, JSON.stringify(body));
      assert.equal(body.status, 'unavailable');
      assert.equal(body.checks.kafka?.status, 'down');
      assert.equal(body.checks.redis?.status, 'up');
      assert.equal(body.checks.postgres?.status, 'up');
      await kafka.start();
      assert.equal((await readyz()).status, 200, 'ready again once Kafka is back');
    } finally {
      await own.stop();
      await kafka.close();
    }
  });
});
