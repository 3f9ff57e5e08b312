// Readiness: each backing service really answers (Redis PING, PostgreSQL SELECT 1,
// Kafka cluster metadata), each with its own deadline so one hung service cannot hide
// the others.
import type { Admin } from 'kafkajs';
import type { Db } from '../db/client.js';
import type { RedisClient } from '../redis/client.js';

export type CheckResult = { status: 'up' } | { status: 'down'; error: string };

async function check(fn: () => Promise<unknown>, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_r, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { status: 'up' };
  } catch (err) {
    return { status: 'down', error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

export class ReadinessProbe {
  private adminConnected = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly db: Db,
    private readonly kafkaAdmin: Admin,
    private readonly timeoutMs = 2000,
  ) {}

  async run(): Promise<{
    ready: boolean;
    checks: Record<'redis' | 'postgres' | 'kafka', CheckResult>;
  }> {
    const [redis, postgres, kafka] = await Promise.all([
      check(() => this.redis.ping(), this.timeoutMs),
      check(() => this.db.$queryRaw`SELECT 1`, this.timeoutMs),
      check(async () => {
        if (!this.adminConnected) {
          await this.kafkaAdmin.connect();
          this.adminConnected = true;
        }
        try {
          const cluster = await this.kafkaAdmin.describeCluster();
          if (cluster.brokers.length === 0) throw new Error('no broker');
        } catch (err) {
          // Reconnect next time: kafkajs keeps a dead connection otherwise.
          this.adminConnected = false;
          await this.kafkaAdmin.disconnect().catch(() => undefined);
          throw err;
        }
      }, this.timeoutMs),
    ]);
    return {
      ready: [redis, postgres, kafka].every((c) => c.status === 'up'),
      checks: { redis, postgres, kafka },
    };
  }

  async close(): Promise<void> {
    if (this.adminConnected) await this.kafkaAdmin.disconnect().catch(() => undefined);
  }
}
