// Configuration: every environment variable the engine reads, validated once with zod,
// then frozen. Defaults work against the local services that `npm run services:up` starts.
import { z } from 'zod';

const DEV_JWT_SECRET = 'dev-only-jwt-secret-do-not-use-in-production-0123456789';
const DEV_ADMIN_TOKEN = 'dev-only-admin-token-change-me';
const DEV_ADMISSION_SECRET = 'dev-only-admission-secret-do-not-use-in-production-01';
const DEV_QUALIFICATION_SECRET = 'dev-only-qualification-secret-do-not-use-in-production';
const DEV_WEBHOOK_SECRET = 'whsec_ZGV2LW9ubHktd2ViaG9vay1zZWNyZXQtMDEyMzQ1Njc4OQ==';

/** Unset and empty variables both mean "use the default". */
const env = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (v === '' || v === undefined ? undefined : v), schema);

const int = (def: number, min: number, max: number) =>
  env(z.coerce.number().int().min(min).max(max).default(def));

/**
 * A rate per second: 0 (no limit) or from 0.001 (one request in 1,000 s) to max. Slower
 * rates than that are a mistake, and would overflow the limiter's integer arithmetic.
 */
const rate = (def: number, max: number) =>
  env(
    z.coerce
      .number()
      .max(max)
      .refine((r) => r === 0 || r >= 0.001, 'must be 0 (no limit) or at least 0.001')
      .default(def),
  );

const bool = (def: boolean) =>
  env(
    z
      .enum(['true', 'false', '1', '0'])
      .default(def ? 'true' : 'false')
      .transform((v) => v === 'true' || v === '1'),
  );

const urlList = (protocols: string[]) =>
  env(
    z
      .string()
      .default('')
      .transform((s, ctx) => {
        const items = s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean);
        for (const item of items) {
          const ok = URL.canParse(item) && protocols.includes(new URL(item).protocol);
          if (!ok)
            ctx.addIssue({
              code: 'custom',
              message: `"${item}" is not a ${protocols.join('/')} URL`,
            });
        }
        return items;
      }),
  );

const hostPortList = (def: string) =>
  env(
    z
      .string()
      .default(def)
      .transform((s, ctx) => {
        const items = s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean);
        if (items.length === 0)
          ctx.addIssue({ code: 'custom', message: 'needs at least one host:port' });
        for (const item of items) {
          if (!/^[A-Za-z0-9._-]+:\d{1,5}$/.test(item)) {
            ctx.addIssue({ code: 'custom', message: `"${item}" is not host:port` });
          }
        }
        return items;
      }),
  );

const urlWith = (def: string, protocols: string[]) =>
  env(
    z
      .string()
      .default(def)
      .refine((s) => URL.canParse(s) && protocols.includes(new URL(s).protocol), {
        message: `must be a ${protocols.join(' or ')} URL`,
      }),
  );

export const configSchema = z
  .object({
    /**
     * Production unless said otherwise: the published development secrets are accepted only
     * when NODE_ENV is development or test, so a deployment that forgets it cannot run on them.
     */
    NODE_ENV: env(z.enum(['development', 'test', 'production']).default('production')),
    PORT: int(3000, 0, 65535),
    HOST: env(z.string().default('127.0.0.1')),
    LOG_LEVEL: env(
      z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    ),
    REDIS_URL: urlWith('redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    /**
     * The durability promise the operator requires of Redis (see README, "Durability").
     * everysec by default: Redis's own recommended AOF setting, at a small throughput cost;
     * `always` when no acknowledged purchase may be lost, `none` to accept losing them.
     */
    REDIS_DURABILITY: env(z.enum(['always', 'everysec', 'none']).default('everysec')),
    /**
     * A Redis command without an answer this long fails (the API answers 503): a hung or
     * unreachable Redis must cost a buyer about a second, never minutes.
     */
    REDIS_COMMAND_TIMEOUT_MS: int(1000, 50, 60000),
    /** The same bound for the few long commands (rebuilding a SKU with all its live orders). */
    REDIS_LONG_COMMAND_TIMEOUT_MS: int(30000, 1000, 600000),
    /** When set, the engine talks to a Redis Cluster through these seed nodes. */
    REDIS_CLUSTER_NODES: env(hostPortList('').optional()).optional(),
    DATABASE_URL: urlWith('postgresql://postgres@127.0.0.1:5432/flashsale', [
      'postgres:',
      'postgresql:',
    ]),
    DATABASE_POOL_SIZE: int(10, 1, 200),
    /** Waiting longer than this for a PostgreSQL connection fails (the API answers 503). */
    DATABASE_CONNECT_TIMEOUT_MS: int(2000, 100, 60000),
    KAFKA_BROKERS: hostPortList('127.0.0.1:9092'),
    KAFKA_CLIENT_ID: env(z.string().min(1).default('flashsale-engine')),
    KAFKA_TOPIC: env(
      z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,200}$/, 'letters, digits, dot, underscore or dash')
        .default('flashsale.stock-events'),
    ),
    KAFKA_WRITER_GROUP: env(z.string().min(1).default('flashsale-db-writer')),
    INVENTORY_PARTITIONS: int(16, 1, 1024),
    JWT_SECRET: env(z.string().min(32, 'must be at least 32 characters').default(DEV_JWT_SECRET)),
    ADMIN_TOKEN: env(z.string().min(16, 'must be at least 16 characters').default(DEV_ADMIN_TOKEN)),
    /** Signs the Admission-Token of admitted waiting-room tickets (HS256). */
    ADMISSION_SECRET: env(
      z.string().min(32, 'must be at least 32 characters').default(DEV_ADMISSION_SECRET),
    ),
    /** Verifies Qualification-Tokens, issued by the seller's own system (HS256). */
    QUALIFICATION_SECRET: env(
      z.string().min(32, 'must be at least 32 characters').default(DEV_QUALIFICATION_SECRET),
    ),
    /**
     * Purchases per second one buyer may send for one SKU (GCRA in Redis), and the burst
     * above that rate; a SKU may set its own. 0 turns the buyer limit off.
     */
    RATE_LIMIT_BUYER_PER_S: rate(5, 100000),
    RATE_LIMIT_BUYER_BURST: int(10, 1, 100000),
    /** The same per client address and SKU (0: off, the default). */
    RATE_LIMIT_CLIENT_PER_S: rate(0, 1000000),
    RATE_LIMIT_CLIENT_BURST: int(100, 1, 1000000),
    /**
     * Proxies in front of the API whose X-Forwarded-For is believed: the client address is
     * the entry this many hops from the right. 0: the socket's peer address.
     */
    TRUSTED_PROXY_HOPS: int(0, 0, 10),
    ALERT_WEBHOOK_URLS: urlList(['http:', 'https:']),
    ALERT_WEBHOOK_SECRET: env(
      z
        .string()
        .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'must look like whsec_<base64>')
        .default(DEV_WEBHOOK_SECRET),
    ),
    // Tuning knobs.
    PURCHASE_BODY_LIMIT_BYTES: int(1024, 64, 65536),
    /** Dispatch the purchase route before express's router (false: through express). */
    PURCHASE_FAST_PATH: bool(true),
    /**
     * Most purchases of one SKU one call of the purchase script decides: those in hand at
     * one moment go together, and pay Redis's call, clock and SKU read once (1: each alone).
     */
    PURCHASE_BATCH_MAX: int(32, 1, 500),
    ADMIN_BODY_LIMIT_BYTES: int(16384, 256, 1048576),
    DEFAULT_RESERVATION_TTL_SECONDS: int(600, 1, 604800),
    SOLD_OUT_CACHE_MS: int(200, 0, 60000),
    IDEMPOTENCY_TTL_SECONDS: int(86400, 60, 2592000),
    ORDER_RETENTION_SECONDS: int(172800, 120, 31536000),
    SWEEP_INTERVAL_MS: int(1000, 50, 3600000),
    SWEEP_BATCH_SIZE: int(100, 1, 10000),
    SWEEP_PARALLEL: int(1, 1, 64),
    LEADER_LEASE_MS: int(5000, 500, 600000),
    RELAY_BATCH_SIZE: int(500, 1, 10000),
    /**
     * How long the relay's read waits for new entries at a partition that has none (a
     * blocking read on a connection of its own); at most a quarter of LEADER_LEASE_MS.
     */
    RELAY_BLOCK_MS: int(1000, 1, 10000),
    WRITER_MAX_BATCH: int(2000, 1, 100000),
    RECONCILE_INTERVAL_MS: int(5000, 100, 3600000),
    LAG_ALERT_AFTER_MS: int(30000, 100, 86400000),
    WEBHOOK_MAX_AGE_MS: int(86400000, 1000, 604800000),
    WEBHOOK_TIMEOUT_MS: int(5000, 100, 60000),
    WEBHOOK_BASE_BACKOFF_MS: int(1000, 10, 600000),
    REPAIR_ENABLED: bool(false),
    /** /metrics reports the writer's Kafka lag as read at most this long ago (never waits on it). */
    METRICS_KAFKA_LAG_REFRESH_MS: int(5000, 500, 600000),
    /** SIGTERM: every shutdown step together gets this long, whatever service is down. */
    SHUTDOWN_TIMEOUT_MS: int(3000, 500, 60000),
    WRITER_CONCURRENCY: int(4, 1, 64),
    /** Fault drills only: the process kills itself at this point (see src/shared/crash.ts). */
    CRASH_POINT: env(
      z.enum(['relay.after-publish', 'writer.after-commit', 'api.after-purchase']).optional(),
    ),
    CRASH_AFTER: int(1, 1, 1_000_000),
  })
  .superRefine((c, ctx) => {
    if (c.ORDER_RETENTION_SECONDS <= c.IDEMPOTENCY_TTL_SECONDS) {
      ctx.addIssue({
        code: 'custom',
        path: ['ORDER_RETENTION_SECONDS'],
        message: 'must exceed IDEMPOTENCY_TTL_SECONDS, or a retry could outlive its order',
      });
    }
    if (c.DEFAULT_RESERVATION_TTL_SECONDS > c.IDEMPOTENCY_TTL_SECONDS) {
      ctx.addIssue({
        code: 'custom',
        path: ['DEFAULT_RESERVATION_TTL_SECONDS'],
        message:
          'must not exceed IDEMPOTENCY_TTL_SECONDS, or a retry could buy again while the first reservation is live',
      });
    }
    if (c.NODE_ENV !== 'production') return;
    const devValues: [keyof typeof c, string][] = [
      ['JWT_SECRET', DEV_JWT_SECRET],
      ['ADMIN_TOKEN', DEV_ADMIN_TOKEN],
      ['ADMISSION_SECRET', DEV_ADMISSION_SECRET],
      ['QUALIFICATION_SECRET', DEV_QUALIFICATION_SECRET],
      ['ALERT_WEBHOOK_SECRET', DEV_WEBHOOK_SECRET],
    ];
    for (const [key, dev] of devValues) {
      if (c[key] === dev) {
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message:
            'the published development value is accepted only with NODE_ENV=development or test; set a secret of your own',
        });
      }
    }
  });

export type Config = Readonly<z.infer<typeof configSchema>>;

export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; message: string }[]) {
    super(
      'Invalid configuration:\n' + problems.map((p) => `  ${p.variable}: ${p.message}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

/** Validates the given environment (process.env by default) and returns a frozen config. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const result = configSchema.safeParse(source);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const variable = String(issue.path[0] ?? '(config)');
        const raw = source[variable];
        const shown =
          raw === undefined
            ? ''
            : ` (got ${JSON.stringify(raw.length > 80 ? raw.slice(0, 80) + '…' : raw)})`;
        const secret = /SECRET|TOKEN|PASSWORD/.test(variable);
        return { variable, message: issue.message + (secret ? '' : shown) };
      }),
    );
  }
  return Object.freeze(result.data);
}

let cached: Config | undefined;

/** The process-wide configuration, validated on first use. */
export function config(): Config {
  cached ??= loadConfig();
  return cached;
}
