// Readiness: each backing service really answers (Redis PING, PostgreSQL SELECT 1,
// Kafka cluster metadata), each with its own deadline so one hung service cannot hide
// the others. The answer says only up or down per service (it is public); why a service
// is down goes to the log, once per change.
import type { Admin } from 'kafkajs';
import type { Db } from '../clients/db.js';
import { withDeadline } from '../shared/deadline.js';
import type { Logger } from '../shared/log.js';
import type { RedisClient } from '../clients/redis.js';

export interface CheckResult {
  status: 'up' | 'down';
}
type Service = 'redis' | 'postgres' | 'kafka';
type Checked = { status: 'up' } | { status: 'down'; error: string };

async function check(fn: () => Promise<unknown>, timeoutMs: number): Promise<Checked> {
  try {
    await withDeadline(fn(), timeoutMs);
    return { status: 'up' };
  } catch (err) {
    return { status: 'down', error: err instanceof Error ? err.message : String(err) };
  }
}

export class ReadinessProbe {
  private adminConnected = false;
  private readonly last = new Map<Service, string>();

  constructor(
    private readonly redis: RedisClient,
    private readonly db: Db,
    private readonly kafkaAdmin: Admin,
    private readonly timeoutMs = 2000,
    private readonly log?: Logger,
  ) {}

  /** The public verdict; the reason, when the verdict changes, goes to the log. */
  private report(service: Service, c: Checked): CheckResult {
    const state = c.status === 'up' ? 'up' : `down: ${c.error}`;
    if (this.last.get(service) !== state) {
      if (c.status === 'down') this.log?.warn({ service, err: c.error }, 'readiness: service down');
      else if (this.last.has(service)) this.log?.info({ service }, 'readiness: service up again');
      this.last.set(service, state);
    }
    return { status: c.status };
  }

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
      checks: {
        redis: this.report('redis', redis),
        postgres: this.report('postgres', postgres),
        kafka: this.report('kafka', kafka),
      },
    };
  }

  async close(): Promise<void> {
    if (this.adminConnected) await this.kafkaAdmin.disconnect().catch(() => undefined);
  }
}
