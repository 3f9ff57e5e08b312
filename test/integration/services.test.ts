// The project's own service management and clients against the real services.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createKafka, createConsumer, createProducer, ACKS_ALL } from '../../src/clients/kafka.js';
import { createRedis, closeRedis } from '../../src/clients/redis.js';
import { servicesUp, ensureTopic } from '../../tools/services/services.js';
import { testConfig, uid } from '../helpers.js';

describe('services and clients', () => {
  const cfg = testConfig();

  it('services:up again reuses what is running', async () => {
    const lines: string[] = [];
    await servicesUp(cfg, (l) => lines.push(l));
    for (const s of ['redis', 'postgres', 'kafka'])
      assert.ok(
        lines.some((l) => l.startsWith(`${s}: reusing`)),
        lines.join('\n'),
      );
  });

  it('topics made at once by several runs each end with a leader for every partition', async () => {
    // kafkajs's own wait for leaders gave up with UNKNOWN_TOPIC_OR_PARTITION when several
    // runs (soaks in parallel) created topics at the same moment.
    const topics = Array.from({ length: 6 }, () => uid('t-many'));
    await Promise.all(topics.map((t) => ensureTopic(cfg.KAFKA_BROKERS, t, 16, () => undefined)));
    const admin = createKafka(cfg, 'test').admin();
    await admin.connect();
    try {
      const meta = await admin.fetchTopicMetadata({ topics });
      for (const t of meta.topics)
        assert.equal(t.partitions.filter((p) => p.leader >= 0).length, 16, t.name);
      await admin.deleteTopics({ topics });
    } finally {
      await admin.disconnect();
    }
  });

  it('a message produced and consumed through the Kafka module', async () => {
    const topic = uid('t-roundtrip');
    await ensureTopic(cfg.KAFKA_BROKERS, topic, 2, () => undefined);
    const kafka = createKafka(cfg, 'test');
    const producer = createProducer(kafka);
    const consumer = createConsumer(kafka, { groupId: uid('g') });
    try {
      await producer.connect();
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const got = new Promise<string>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) => resolve(message.value?.toString() ?? ''),
        });
      });
      await producer.send({
        topic,
        acks: ACKS_ALL,
        messages: [{ key: 'k', value: 'hello', partition: 1 }],
      });
      const value = await Promise.race([
        got,
        new Promise<string>((_r, rej) =>
          setTimeout(() => rej(new Error('no message within 30 s')), 30000),
        ),
      ]);
      assert.equal(value, 'hello');
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });

  describe('Lua commands', () => {
    const redis = createRedis(cfg);
    after(() => closeRedis(redis));

    it('still work after SCRIPT FLUSH (EVALSHA falls back to EVAL)', async () => {
      const sku = uid('flush');
      const keys = [`fs:{p00}:sku:${sku}`, `fs:{p00}:events:${sku}`];
      await redis.hset(keys[0]!, 'available', 5, 'supplied', 5, 'seq', 0);
      try {
        const before = await redis.fsRestock(keys[0]!, keys[1]!, sku, 1, 'test', 1000);
        assert.equal(before[0], 1);
        await redis.script('FLUSH');
        const afterFlush = await redis.fsRestock(keys[0]!, keys[1]!, sku, 1, 'test', 1000);
        assert.deepEqual(afterFlush, [1, 7, 7, 2]);
      } finally {
        await redis.del(...keys);
      }
    });
  });
});
