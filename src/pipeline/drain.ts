// Whether a partition's events have all reached PostgreSQL: its Redis stream is empty
// (the relay trims what Kafka acknowledged) and the DB writer's group has no lag on the
// matching Kafka partition. A SKU may only be rebuilt from PostgreSQL when this holds.
import type { Admin } from 'kafkajs';
import type { KeySpace } from '../inventory/keys.js';
import type { RedisClient } from '../redis/client.js';

export interface PartitionLag {
  partition: number;
  streamLength: number;
  kafkaLag: number;
}

export class PipelineGauge {
  constructor(
    private readonly redis: RedisClient,
    private readonly admin: Admin,
    private readonly keys: KeySpace,
    private readonly topic: string,
    private readonly groupId: string,
  ) {}

  async kafkaLag(): Promise<Map<number, number>> {
    const [high, committed] = await Promise.all([
      this.admin.fetchTopicOffsets(this.topic),
      this.admin.fetchOffsets({ groupId: this.groupId, topics: [this.topic] }),
    ]);
    const done = new Map<number, number>();
    for (const t of committed)
      for (const p of t.partitions) done.set(p.partition, Number(p.offset));
    const lag = new Map<number, number>();
    for (const p of high) {
      const c = done.get(p.partition) ?? -1;
      lag.set(p.partition, Number(p.high) - (c < 0 ? Number(p.low) : c));
    }
    return lag;
  }

  async streamLengths(): Promise<Map<number, number>> {
    const lengths = await Promise.all(
      Array.from({ length: this.keys.partitions }, (_, p) => this.redis.xlen(this.keys.events(p))),
    );
    return new Map(lengths.map((n, p) => [p, n]));
  }

  async lag(partition: number): Promise<PartitionLag> {
    const [streamLength, kafka] = await Promise.all([
      this.redis.xlen(this.keys.events(partition)),
      this.kafkaLag(),
    ]);
    return { partition, streamLength, kafkaLag: kafka.get(partition) ?? 0 };
  }

  async drained(partition: number): Promise<boolean> {
    const l = await this.lag(partition);
    return l.streamLength === 0 && l.kafkaLag === 0;
  }
}
