// An isolated pipeline for tests that feed it events PostgreSQL refuses, or lose Redis's
// data: a redis-server of the test's own (never the shared one), a Kafka topic and a
// writer group of its own, so a poisoned or stuck partition can only stall this test.
// PostgreSQL is the shared one (each test uses its own SKU ids). Always torn down.
import { createServer as createHttp, type Server } from 'node:http';
import { IncidentStore } from '../../src/alerts/incidents.js';
import type { Db } from '../../src/clients/db.js';
import { createKafka } from '../../src/clients/kafka.js';
import { ensureTopic } from '../../tools/services/services.js';
import type { Role } from '../../src/engine.js';
import { startEngine, testConfig, uid, type RunningApi } from '../helpers.js';
import { ownRedis } from '../support/redis-server.js';

export interface OwnStack {
  /** Config overrides that point an engine at this stack. */
  env: Record<string, string>;
  /** Webhook deliveries this stack's receiver got (it answers 204). */
  received: { type: string; kind: string; sku: string }[];
  close(): Promise<void>;
}

export async function ownStack(): Promise<OwnStack> {
  const redis = await ownRedis();
  const topic = uid('fs-test-topic');
  const cfg = testConfig();
  const admin = createKafka(cfg, 'own-stack').admin();
  const received: OwnStack['received'] = [];
  const rx: Server = createHttp((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const b = JSON.parse(Buffer.concat(chunks).toString()) as {
          type: string;
          data: { kind: string; sku: string };
        };
        received.push({ type: b.type, kind: b.data.kind, sku: b.data.sku });
      } catch {
        // not ours to judge here
      }
      res.writeHead(204).end();
    });
  });
  const close = async () => {
    await redis.close();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
    await new Promise<void>((r) => rx.close(() => r()));
  };
  try {
    await admin.connect();
    await ensureTopic(cfg.KAFKA_BROKERS, topic, cfg.INVENTORY_PARTITIONS, () => undefined);
    await new Promise<void>((r) => rx.listen(0, '127.0.0.1', r));
  } catch (err) {
    await close();
    throw err;
  }
  const a = rx.address() as { port: number };
  return {
    received,
    env: {
      REDIS_URL: redis.url,
      REDIS_DURABILITY: 'none',
      KAFKA_TOPIC: topic,
      KAFKA_WRITER_GROUP: uid('fs-test-writer'),
      ALERT_WEBHOOK_URLS: `http://127.0.0.1:${a.port}/alerts`,
    },
    close,
  };
}

/**
 * This stack's SKUs exist in no shared Redis: other engineers' reconcilers would alert on
 * them for good. Close their incidents quietly and remove them from PostgreSQL (parked
 * anomalies stay, for the record).
 */
export async function forgetSkus(db: Db, skus: string[]): Promise<void> {
  if (skus.length === 0) return;
  const store = new IncidentStore(db, () => []);
  for (const i of await store.openIncidents(skus)) await store.resolve(i.skuId, i.kind);
  await db.stockEvent.deleteMany({ where: { skuId: { in: skus } } });
  await db.order.deleteMany({ where: { skuId: { in: skus } } });
  await db.sku.deleteMany({ where: { id: { in: skus } } });
}

/**
 * An in-process engine of the given roles on a stack of its own. `close` forgets the SKUs
 * the test made there (listed in `skus`), stops the engine and always closes the stack.
 */
export async function startOwnPipeline(roles: Role[], skus: string[]) {
  const stack = await ownStack();
  let api: RunningApi;
  try {
    api = await startEngine(roles, stack.env);
  } catch (err) {
    await stack.close();
    throw err;
  }
  return {
    stack,
    api,
    close: async () => {
      try {
        await forgetSkus(api.engine.db, skus);
        await api.stop();
      } finally {
        await stack.close();
      }
    },
  };
}
