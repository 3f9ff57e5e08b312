// Crash drills, each repeated and mid-load, with kill -9 and restart, in separate
// processes: the relay between Kafka's acknowledgement and XACK, the DB writer between
// its commit and the offset commit, an API process after deciding a purchase and before
// answering, and the Kafka broker stopped for 10 s. After recovery: no accepted order
// lost, none applied twice, stock equal in both stores.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { postRetrying } from '../support/load.js';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Engine } from '../../src/engine.js';
import {
  assertPipelineExact,
  startEngine,
  testConfig,
  token,
  uid,
  assertStoresAgree,
  type RunningApi,
} from '../helpers.js';
import { ownKafka } from '../support/kafka-broker.js';
import { killAll, supervise } from '../support/processes.js';

/**
 * Keeps one process of a role alive: restarts it when it dies. The first `crashes`
 * incarnations carry the crash point; later ones run clean.
 */
function superviseWithCrash(
  name: string,
  roles: string[],
  crash: { point: string; crashes: number } | undefined,
  env: Record<string, string> = {},
) {
  return supervise(name, roles, (deaths): Record<string, string> =>
    crash && deaths < crash.crashes
      ? {
          ...env,
          SWEEP_INTERVAL_MS: '200',
          CRASH_POINT: crash.point,
          CRASH_AFTER: String(2 + Math.floor(Math.random() * 4)),
        }
      : { ...env, SWEEP_INTERVAL_MS: '200' },
  );
}

interface Outcome {
  accepted: Map<string, { orderId: string; sku: string; status: string }>;
  attempts: number;
}

/**
 * Purchases (and some cancels) against whatever API URL is current; a request whose
 * answer was lost to a crash is retried with the same Idempotency-Key, as a client would.
 */
async function runLoad(
  apiUrl: () => Promise<string>,
  skus: string[],
  total: number,
  more: () => boolean = () => false,
): Promise<Outcome> {
  const accepted = new Map<string, { orderId: string; sku: string; status: string }>();
  const users = Array.from({ length: 300 }, (_, i) => `cr${i}`);
  const jwts = await Promise.all(users.map((u) => token(u)));
  let attempts = 0;
  const call = (path: string, jwt: string, headers: Record<string, string>, body?: string) =>
    postRetrying<{ orderId: string; status: string }>(apiUrl, path, jwt, headers, body, 200);
  const started = Date.now();
  for (let wave = 0; attempts < total || (more() && Date.now() - started < 120_000); wave++) {
    await Promise.all(
      Array.from({ length: 60 }, async (_, j) => {
        attempts += 1;
        const u = (wave * 60 + j) % users.length;
        const sku = skus[(wave + j) % skus.length]!;
        const key = `${sku}-${wave}-${j}`;
        const r = await call(
          `/v1/skus/${sku}/purchases`,
          jwts[u]!,
          { 'idempotency-key': key, 'content-type': 'application/json' },
          '{"quantity":1}',
        );
        if (r.status !== 201) return;
        accepted.set(r.body.orderId, { orderId: r.body.orderId, sku, status: 'reserved' });
        if (j % 4 === 0) {
          const c = await call(`/v1/orders/${r.body.orderId}/cancel`, jwts[u]!, {});
          if (c.status === 200) accepted.get(r.body.orderId)!.status = 'cancelled';
        }
      }),
    );
  }
  return { accepted, attempts };
}

async function verify(engine: Engine, skus: string[], outcome: Outcome) {
  await assertStoresAgree(engine, skus, 120000);
  const dbOrders = await engine.db.order.findMany({
    where: { skuId: { in: skus } },
    select: { id: true, status: true, skuId: true },
  });
  const dbIds = new Set(dbOrders.map((o) => o.id));
  assert.equal(dbIds.size, dbOrders.length, 'no order twice');
  for (const [id, o] of outcome.accepted) {
    assert.ok(dbIds.has(id), `accepted order ${id} reached PostgreSQL`);
    assert.equal(dbOrders.find((x) => x.id === id)!.status, o.status, `order ${id} status`);
  }
  await assertPipelineExact(engine, skus, dbOrders);
}

describe('crash drills (kill -9 and restart, mid-load)', { timeout: 600_000 }, () => {
  let reader: RunningApi;
  before(async () => {
    reader = await startEngine([]);
  });
  after(async () => {
    killAll();
    await reader.stop();
  });
  afterEach(() => killAll());

  async function drill(target: 'relay' | 'writer' | 'api', point: string) {
    const skus = Array.from({ length: 6 }, () => uid(`crash-${target}`));
    for (const sku of skus)
      await reader.engine.inventory.createSku({ sku, name: sku, stock: 5000, perUserLimit: 1000 });
    const crashes = 3;
    const api = superviseWithCrash(
      'api',
      ['api', 'sweeper'],
      target === 'api' ? { point, crashes } : undefined,
    );
    const relay = superviseWithCrash(
      'relay',
      ['relay'],
      target === 'relay' ? { point, crashes } : undefined,
    );
    const writer = superviseWithCrash(
      'writer',
      ['writer'],
      target === 'writer' ? { point, crashes } : undefined,
    );
    try {
      const sup = { api, relay, writer }[target];
      // Load until the target has crashed every time (a killed consumer costs a session timeout).
      const outcome = await runLoad(
        () => api.proc.url,
        skus,
        1500,
        () => sup.deaths < crashes,
      );
      const deadline = Date.now() + 60000;
      while (sup.deaths < crashes && Date.now() < deadline) await sleep(200);
      assert.equal(sup.deaths, crashes, `${target} was killed ${crashes} times at ${point}`);
      assert.ok(outcome.accepted.size > 300, `accepted ${outcome.accepted.size}`);
      await verify(reader.engine, skus, outcome);
    } finally {
      await Promise.all([api.stop(), relay.stop(), writer.stop()]);
    }
  }

  it('relay killed between the Kafka acknowledgement and XACK', () =>
    drill('relay', 'relay.after-publish'));
  it('DB writer killed between its commit and the offset commit', () =>
    drill('writer', 'writer.after-commit'));
  it('API process killed after deciding a purchase, before answering', () =>
    drill('api', 'api.after-purchase'));

  it('Kafka broker killed for 10 s mid-load, then started', async () => {
    // A broker of the drill's own: the shared one serves every other test.
    const cfg = testConfig();
    const kafka = await ownKafka(cfg.KAFKA_TOPIC, cfg.INVENTORY_PARTITIONS);
    const env = { KAFKA_BROKERS: kafka.brokers.join(',') };
    const skus = Array.from({ length: 6 }, () => uid('crash-kafka'));
    for (const sku of skus)
      await reader.engine.inventory.createSku({ sku, name: sku, stock: 400, perUserLimit: 10 });
    const api = superviseWithCrash('api', ['api', 'sweeper'], undefined, env);
    const relay = superviseWithCrash('relay', ['relay'], undefined, env);
    const writer = superviseWithCrash('writer', ['writer'], undefined, env);
    try {
      const load = runLoad(() => api.proc.url, skus, 1500);
      await sleep(1500);
      await kafka.kill();
      await sleep(10000);
      await kafka.start();
      const outcome = await load;
      await verify(reader.engine, skus, outcome);
    } finally {
      await Promise.all([api.stop(), relay.stop(), writer.stop()]);
      await kafka.close();
    }
  });
});
