// The DB writer's Kafka lag (PipelineGauge.kafkaLag) is never negative: a commit that lands
// between reading the end offsets and the committed ones must not make the writer look
// ahead of Kafka. Kafka's admin API is stubbed here (a pure unit test of the read order);
// the gauge against a real broker runs in the integration tests.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Admin } from 'kafkajs';
import type { RedisClient } from '../../src/clients/redis.js';
import { PipelineGauge } from '../../src/pipeline/drain.js';
import { KeySpace } from '../../src/shared/keys.js';

/**
 * One partition whose end offset is read as it stands when asked, and whose committed
 * offset as it stands when the answer comes back: meanwhile 2 events are produced and the
 * writer commits them.
 */
function racingAdmin(): Admin {
  let high = 8;
  let committed = 8;
  const stub = {
    fetchTopicOffsets: async () => {
      const seen = high;
      await Promise.resolve();
      return [{ partition: 0, offset: String(seen), high: String(seen), low: '0' }];
    },
    fetchOffsets: async () => {
      await Promise.resolve();
      high += 2;
      committed += 2;
      return [{ topic: 't', partitions: [{ partition: 0, offset: String(committed) }] }];
    },
  };
  return stub as unknown as Admin;
}

describe('Kafka lag of the DB writer', () => {
  it('is never negative when commits land between its two reads', async () => {
    for (let i = 0; i < 3; i++) {
      const gauge = new PipelineGauge({} as RedisClient, racingAdmin(), new KeySpace(1), 't', 'g');
      const lag = await gauge.kafkaLag();
      assert.ok((lag.get(0) ?? 0) >= 0, `lag ${lag.get(0)}`);
    }
  });
});
