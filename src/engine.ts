// Wires the engine's parts from one config: the clients, the inventory and each role.
// `npm start` runs every role in one process; each role can also run alone.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import type { Admin } from 'kafkajs';
import type { Config } from './shared/config.js';
import { closeDb, createDb, type Db } from './clients/db.js';
import { Authenticator } from './http/auth.js';
import { createApp, createHttpServer } from './http/app.js';
import { ReadinessProbe } from './http/health.js';
import { purchaseHandler } from './http/purchase.js';
import { PassTokens } from './admission/tokens.js';
import { Admitter, ADMITTER_DEFAULTS } from './admission/admitter.js';
import { QueuedSkus } from './admission/queued-skus.js';
import { QUEUE_AFTER_END_MS, WaitingRoom } from './admission/waiting-room.js';
import { queueRoutes } from './http/queue-routes.js';
import { buildRoutes, type RouteSpec } from './http/routes.js';
import { Inventory } from './inventory/inventory.js';
import type { InventoryOptions } from './inventory/types.js';
import { KeySpace } from './shared/keys.js';
import { Sweeper } from './inventory/sweeper.js';
import { createConsumer, createKafka, createProducer } from './clients/kafka.js';
import { armCrashPoints } from './shared/crash.js';
import { setPipelineSource, setQueueSource } from './shared/metrics.js';
import { Relay } from './pipeline/relay.js';
import { WebhookDispatcher } from './alerts/dispatcher.js';
import { IncidentStore } from './alerts/incidents.js';
import { Reconciler } from './reconcile/reconciler.js';
import { reconcileRoutes } from './http/admin-routes.js';
import { liveRoutes } from './http/live-routes.js';
import { LiveView } from './live/snapshot.js';
import { CounterPublisher } from './live/counters.js';
import { setLiveGaugeSource } from './live/gauges.js';
import { DbWriter } from './pipeline/writer.js';
import { createLogger, type Logger } from './shared/log.js';
import { PipelineGauge } from './pipeline/drain.js';
import { closeRedis, createRedis, type RedisClient } from './clients/redis.js';
import { createRedlock, Leadership, withLock } from './clients/locks.js';
import { DurabilityWatch } from './clients/redis-durability.js';
import { DeadlineExceeded, withDeadline } from './shared/deadline.js';

export const ROLES = ['api', 'sweeper', 'relay', 'writer', 'reconciler'] as const;
export type Role = (typeof ROLES)[number];

const version = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

export class Engine {
  readonly log: Logger;
  readonly redis: RedisClient;
  readonly db: Db;
  readonly keys: KeySpace;
  readonly kafkaAdmin: Admin;
  readonly gauge: PipelineGauge;
  readonly inventory: Inventory;
  /** Signs and verifies the Admission-Token and the Qualification-Token. */
  readonly passes: PassTokens;
  readonly redlock;
  readonly incidents: IncidentStore;
  /** What Redis's persistence promises, checked against REDIS_DURABILITY at start. */
  readonly durability: DurabilityWatch;
  private server: Server | undefined;
  /** The REST routes of the running API (also the source of /openapi.json). */
  routes: RouteSpec[] = [];
  private sweeper: Sweeper | undefined;
  private readiness: ReadinessProbe;
  private closers: (() => Promise<void>)[] = [];

  constructor(
    readonly cfg: Config,
    role = 'engine',
    /** For benchmarks that compare the engine's own choices (bench/ceiling-server.ts). */
    inventoryOverrides: Partial<Pick<InventoryOptions, 'claimInScript' | 'purchaseBatchMax'>> = {},
  ) {
    this.log = createLogger(cfg.LOG_LEVEL, role);
    armCrashPoints(cfg);
    this.redis = createRedis(cfg, { name: `flashsale-${role}` });
    this.redis.on('error', (err: Error) =>
      this.log.warn({ err: err.message }, 'redis connection error'),
    );
    this.db = createDb(cfg);
    this.keys = new KeySpace(cfg.INVENTORY_PARTITIONS);
    this.kafkaAdmin = createKafka(cfg, `${role}-admin`, { log: this.log }).admin();
    this.gauge = new PipelineGauge(
      this.redis,
      this.kafkaAdmin,
      this.keys,
      cfg.KAFKA_TOPIC,
      cfg.KAFKA_WRITER_GROUP,
    );
    this.redlock = createRedlock(this.redis);
    // Readiness asks once and answers: its own quiet client that does not retry.
    const probeAdmin = createKafka(cfg, `${role}-ready`, { retry: { retries: 0 } }).admin();
    this.readiness = new ReadinessProbe(this.redis, this.db, probeAdmin, 2000, this.log);
    this.incidents = new IncidentStore(this.db, () => cfg.ALERT_WEBHOOK_URLS);
    this.durability = new DurabilityWatch(
      this.redis,
      { required: cfg.REDIS_DURABILITY, production: cfg.NODE_ENV === 'production' },
      this.log,
    );
    this.passes = new PassTokens(cfg.ADMISSION_SECRET, cfg.QUALIFICATION_SECRET);
    this.inventory = new Inventory(this.redis, this.db, this.keys, {
      idempotencyTtlSeconds: cfg.IDEMPOTENCY_TTL_SECONDS,
      orderRetentionSeconds: cfg.ORDER_RETENTION_SECONDS,
      soldOutCacheMs: cfg.SOLD_OUT_CACHE_MS,
      defaultReservationTtlSeconds: cfg.DEFAULT_RESERVATION_TTL_SECONDS,
      claimInScript: !cfg.REDIS_CLUSTER_NODES?.length,
      purchaseBatchMax: cfg.PURCHASE_BATCH_MAX,
      buyerRatePerSecond: cfg.RATE_LIMIT_BUYER_PER_S,
      buyerBurst: cfg.RATE_LIMIT_BUYER_BURST,
      clientRatePerSecond: cfg.RATE_LIMIT_CLIENT_PER_S,
      clientBurst: cfg.RATE_LIMIT_CLIENT_BURST,
      ...inventoryOverrides,
      waitForPipeline: (partition) => this.withAdmin(() => this.gauge.settled(partition, 15_000)),
      withLock: (resource, fn) => withLock(this.redlock, resource, cfg.LEADER_LEASE_MS, fn),
    });
  }

  /** Per Kafka partition, the events the DB writer has not committed yet. */
  kafkaLag(): Promise<Map<number, number>> {
    return this.withAdmin(() => this.gauge.kafkaLag());
  }

  private adminConnection: Promise<void> | undefined;
  private adminClosed = false;
  /** Requests on the admin client in flight: stop() lets them end before disconnecting. */
  private readonly adminWork = new Set<Promise<unknown>>();

  /**
   * Runs fn on the connected admin client, tracked: kafkajs opens a broker connection for
   * a request still running when the client disconnects, which would outlive the engine.
   */
  private async withAdmin<T>(fn: () => Promise<T>): Promise<T> {
    await this.adminReady();
    const work = fn();
    this.adminWork.add(work);
    try {
      return await work;
    } finally {
      this.adminWork.delete(work);
    }
  }
  /** The shared Kafka admin client, connected on first use. */
  private adminReady(): Promise<void> {
    // After stop() a late reader (a scrape's background lag read) must not reconnect: the
    // connection would outlive the engine and keep its process alive.
    if (this.adminClosed) return Promise.reject(new Error('the engine is stopping'));
    // A failed connect is forgotten, so the next caller tries again once Kafka is back.
    this.adminConnection ??= this.kafkaAdmin.connect().catch((err: unknown) => {
      this.adminConnection = undefined;
      throw err;
    });
    return this.adminConnection;
  }

  async startApi(): Promise<Server> {
    const auth = new Authenticator(this.cfg.JWT_SECRET, this.cfg.ADMIN_TOKEN);
    const purchase = purchaseHandler({
      inventory: this.inventory,
      auth,
      log: this.log,
      bodyLimitBytes: this.cfg.PURCHASE_BODY_LIMIT_BYTES,
      passes: this.passes,
      trustedProxyHops: this.cfg.TRUSTED_PROXY_HOPS,
    });
    // The on-demand pass's reconciler: its lease is released on stop like the periodic one's.
    const adminReconciler = this.createReconciler();
    this.closers.push(() => adminReconciler.stop());
    const kafkaLag = () => this.kafkaLag();
    // The live sale view (JSON, event stream, page, per-SKU gauges), summing the sale
    // counters every API process publishes, this one included.
    const live = new LiveView({
      redis: this.redis,
      db: this.db,
      keys: this.keys,
      incidents: this.incidents,
      kafkaLag,
      kafkaLagRefreshMs: this.cfg.METRICS_KAFKA_LAG_REFRESH_MS,
    });
    const liveHttp = liveRoutes({ view: live });
    setLiveGaugeSource(live);
    const counters = new CounterPublisher(this.redis, this.keys, this.log);
    await counters.start();
    this.closers.push(() => counters.stop());
    // The waiting room's routes, and its gauge: tickets waiting per queued SKU (the 100
    // most recently created), read at scrape time.
    const waitingRoom = new WaitingRoom({
      redis: this.redis,
      keys: this.keys,
      inventory: this.inventory,
      passes: this.passes,
      buyerRatePerSecond: this.cfg.RATE_LIMIT_BUYER_PER_S,
      buyerBurst: this.cfg.RATE_LIMIT_BUYER_BURST,
      clientRatePerSecond: this.cfg.RATE_LIMIT_CLIENT_PER_S,
      clientBurst: this.cfg.RATE_LIMIT_CLIENT_BURST,
    });
    const queued = new QueuedSkus(this.db, QUEUE_AFTER_END_MS);
    setQueueSource(async () => waitingRoom.waitingCounts((await queued.get()).slice(0, 100)));
    const queueHttp = queueRoutes({
      waitingRoom,
      inventory: this.inventory,
      adminBodyLimitBytes: this.cfg.ADMIN_BODY_LIMIT_BYTES,
      trustedProxyHops: this.cfg.TRUSTED_PROXY_HOPS,
    });
    const routes = buildRoutes({
      inventory: this.inventory,
      purchase,
      adminBodyLimitBytes: this.cfg.ADMIN_BODY_LIMIT_BYTES,
      extra: reconcileRoutes({
        reconciler: adminReconciler,
        incidents: this.incidents,
        inventory: this.inventory,
        repairEnabled: this.cfg.REPAIR_ENABLED,
        adminBodyLimitBytes: this.cfg.ADMIN_BODY_LIMIT_BYTES,
      }).concat(liveHttp.routes, queueHttp),
    });
    this.routes = routes;
    setPipelineSource(
      {
        streamLengths: () => this.gauge.streamLengths(),
        kafkaLag,
      },
      { kafkaLagRefreshMs: this.cfg.METRICS_KAFKA_LAG_REFRESH_MS },
    );
    const app = createApp({ routes, auth, readiness: this.readiness, log: this.log, version });
    const server = createHttpServer(app, this.cfg.PURCHASE_FAST_PATH ? purchase : undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.cfg.PORT, this.cfg.HOST, () => resolve());
    });
    this.server = server;
    this.closers.push(
      () =>
        new Promise<void>((resolve) => {
          // Keep-alive clients would hold the server open: every answer from now on
          // closes its connection.
          server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
            if (!res.headersSent) res.setHeader('Connection', 'close');
          });
          server.close(() => resolve());
          server.closeIdleConnections();
          // Requests still running past the shutdown budget are cut off, not waited for.
          setTimeout(() => server.closeAllConnections(), this.cfg.SHUTDOWN_TIMEOUT_MS).unref();
        }),
      // Runs before the server's close (closers run in reverse): open event streams end.
      async () => liveHttp.close(),
    );
    return server;
  }

  startSweeper(): Sweeper {
    const leadership = new Leadership(
      this.redlock,
      this.keys.leader('sweeper'),
      this.cfg.LEADER_LEASE_MS,
    );
    this.sweeper = new Sweeper(
      this.redis,
      this.inventory,
      leadership,
      {
        intervalMs: this.cfg.SWEEP_INTERVAL_MS,
        batchSize: this.cfg.SWEEP_BATCH_SIZE,
        parallel: this.cfg.SWEEP_PARALLEL,
      },
      this.log,
    );
    this.sweeper.start();
    const sweeper = this.sweeper;
    this.closers.push(() => sweeper.stop());
    return sweeper;
  }

  /**
   * The waiting rooms' admission passes: in the sweeper role (a periodic leader task like
   * the sweeper's, on a lease of its own), so the roles stay as they are.
   */
  startAdmitter(): Admitter {
    const admitter = new Admitter(
      this.redis,
      this.keys,
      new QueuedSkus(this.db, QUEUE_AFTER_END_MS),
      new Leadership(this.redlock, this.keys.leader('admitter'), this.cfg.LEADER_LEASE_MS),
      ADMITTER_DEFAULTS,
      this.log.child({ component: 'admitter' }),
    );
    admitter.start();
    this.closers.push(() => admitter.stop());
    return admitter;
  }

  async startRelay(): Promise<Relay> {
    const kafka = createKafka(this.cfg, 'relay', { log: this.log });
    // A read blocks at most a quarter of the lease, so the lease still has time left after
    // it (it is renewed at half) to publish what the read brought.
    const blockMs = Math.min(this.cfg.RELAY_BLOCK_MS, Math.floor(this.cfg.LEADER_LEASE_MS / 4));
    const readerCfg = {
      ...this.cfg,
      REDIS_COMMAND_TIMEOUT_MS: this.cfg.REDIS_COMMAND_TIMEOUT_MS + blockMs,
    };
    const relay = new Relay(
      this.redis,
      (p) =>
        // Its failures reach the relay's loop, which logs and retries them.
        createRedis(readerCfg, { name: `flashsale-relay-p${p}` }).on('error', () => undefined),
      createProducer(kafka),
      this.keys,
      (p) => new Leadership(this.redlock, this.keys.lock(p, 'relay'), this.cfg.LEADER_LEASE_MS),
      {
        topic: this.cfg.KAFKA_TOPIC,
        batchSize: this.cfg.RELAY_BATCH_SIZE,
        blockMs,
      },
      this.log.child({ component: 'relay' }),
    );
    await relay.start();
    this.closers.push(() => relay.stop());
    return relay;
  }

  async startWriter(): Promise<DbWriter> {
    const kafka = createKafka(this.cfg, 'writer', { log: this.log });
    const consumer = createConsumer(kafka, {
      groupId: this.cfg.KAFKA_WRITER_GROUP,
      sessionTimeout: 10_000,
      // A member killed without leaving holds a rebalance at most this long.
      rebalanceTimeout: 20_000,
      heartbeatInterval: 1_000,
      maxWaitTimeInMs: 50,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5_000 },
    });
    const writer = new DbWriter(
      this.db,
      consumer,
      {
        topic: this.cfg.KAFKA_TOPIC,
        maxBatch: this.cfg.WRITER_MAX_BATCH,
        concurrency: this.cfg.WRITER_CONCURRENCY,
      },
      this.log.child({ component: 'writer' }),
      this.incidents,
    );
    await writer.start();
    this.closers.push(() => writer.stop());
    return writer;
  }

  createReconciler(): Reconciler {
    return new Reconciler(
      this.redis,
      this.db,
      this.keys,
      this.incidents,
      new Leadership(this.redlock, this.keys.leader('reconciler'), this.cfg.LEADER_LEASE_MS),
      { intervalMs: this.cfg.RECONCILE_INTERVAL_MS, lagAlertAfterMs: this.cfg.LAG_ALERT_AFTER_MS },
      this.log.child({ component: 'reconciler' }),
    );
  }

  /** The periodic reconciler (one leader across instances) and the webhook dispatcher. */
  startReconciler(): { reconciler: Reconciler; dispatcher: WebhookDispatcher } {
    const reconciler = this.createReconciler();
    const dispatcher = new WebhookDispatcher(
      this.db,
      {
        secret: this.cfg.ALERT_WEBHOOK_SECRET,
        timeoutMs: this.cfg.WEBHOOK_TIMEOUT_MS,
        maxAgeMs: this.cfg.WEBHOOK_MAX_AGE_MS,
        pollMs: 200,
        baseBackoffMs: this.cfg.WEBHOOK_BASE_BACKOFF_MS,
      },
      this.log.child({ component: 'webhooks' }),
    );
    reconciler.start();
    dispatcher.start();
    this.closers.push(
      () => reconciler.stop(),
      () => dispatcher.stop(),
    );
    return { reconciler, dispatcher };
  }

  async start(roles: readonly Role[]): Promise<void> {
    // Every role states the promise; in production a weaker one than configured stops here.
    await this.durability.start();
    // Consumers of work first, producers of work last; shutdown runs in reverse order.
    if (roles.includes('writer')) await this.startWriter();
    if (roles.includes('relay')) await this.startRelay();
    if (roles.includes('sweeper')) {
      this.startSweeper();
      this.startAdmitter();
    }
    if (roles.includes('reconciler')) this.startReconciler();
    if (roles.includes('api')) await this.startApi();
  }

  get address(): { host: string; port: number } | undefined {
    const a = this.server?.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  /** Stops taking work, lets each role finish what it holds, then closes the clients. */
  async stop(): Promise<void> {
    // All steps together get SHUTDOWN_TIMEOUT_MS whatever is down: a step that waits on a
    // dead service past its share is left behind, and the next one runs.
    const deadline = Date.now() + this.cfg.SHUTDOWN_TIMEOUT_MS;
    const step = async (name: string, fn: () => Promise<unknown>) => {
      try {
        await withDeadline(fn(), Math.max(deadline - Date.now(), 100));
      } catch (err) {
        if (err instanceof DeadlineExceeded)
          this.log.warn({ step: name }, 'shutdown step overran its time; moving on');
        else this.log.error({ err, step: name }, 'shutdown step failed');
      }
    };
    const closers = this.closers.reverse();
    this.closers = [];
    for (const [i, close] of closers.entries())
      await step(`role ${i + 1}/${closers.length}`, close);
    this.durability.stop();
    await step('inventory', () => this.inventory.close());
    await step('readiness', () => this.readiness.close());
    await step('kafka admin', async () => {
      this.adminClosed = true;
      // A connect or a request still in flight would finish after a disconnect sent now.
      await this.adminConnection?.catch(() => undefined);
      await Promise.allSettled([...this.adminWork]);
      await this.kafkaAdmin.disconnect();
    });
    await step('redis', () => closeRedis(this.redis));
    await step('postgres', () => closeDb(this.db));
  }
}
