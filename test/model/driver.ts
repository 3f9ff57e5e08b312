// The model-based test's commands: each asks the model what the engine must answer, sends
// the real request to one of the engine's API processes, compares, and moves the model.
// Nemesis commands kill processes, stop Kafka, or make Redis lose its data in between.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import type { Engine } from '../../src/engine.js';
import { skuInPartition, token, waitForDrain } from '../helpers.js';
import type { OwnRedis } from '../support/redis-server.js';
import type { Supervised } from '../support/processes.js';
import { Model, type Expect } from './model.js';

export interface World {
  apis: Supervised[];
  relay: Supervised;
  writer: Supervised;
  sweeper: Supervised;
  redis: OwnRedis;
  /** In-process engine without roles: reads both stores, plays Redis's clock for keys. */
  reader: Engine;
  adminToken: string;
  /** Kafka can be stopped (the run manages its broker). */
  kafka?: { stop(): Promise<void>; start(): Promise<void> };
  faults: number;
  commands: number;
  /** Names this process's runs apart from earlier ones (the stores outlive a process). */
  tag: string;
}

/** One run's real side: its own SKU and user names, so runs never meet. */
export class Real {
  readonly skuIds: string[];
  readonly users: string[];
  private readonly jwts = new Map<string, string>();
  private keyCount = 0;
  private turn = 0;
  readonly lastKey = new Map<string, string>();

  constructor(
    readonly world: World,
    readonly run: string,
  ) {
    const first = `${run}-s0`;
    // Slot 2 shares slot 0's inventory partition (and so its stream and expiry index).
    this.skuIds = [
      first,
      `${run}-s1`,
      skuInPartition(world.reader.keys, world.reader.keys.partitionOf(first), `${run}-s2`),
    ];
    this.users = Array.from({ length: 5 }, (_, i) => `${run}_u${i}`);
  }

  freshKey(): string {
    this.keyCount += 1;
    return `k${this.keyCount}`;
  }

  async jwt(user: string): Promise<string> {
    let t = this.jwts.get(user);
    if (!t) this.jwts.set(user, (t = await token(user)));
    return t;
  }

  /**
   * Sends a request to one API process. While the engine says it is recovering (503 with
   * SERVICE_UNAVAILABLE or SKU_UNAVAILABLE the model did not expect) or a process is being
   * restarted, the same request is sent again, as a client following Retry-After would.
   */
  async send(
    method: 'GET' | 'POST',
    path: string,
    auth: string,
    opts: { body?: unknown; rawBody?: string; key?: string; expect503?: boolean } = {},
  ): Promise<{ status: number; body: any; replayed: boolean }> {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const api = this.world.apis[this.turn++ % this.world.apis.length]!;
      try {
        const url = await Promise.race([api.proc.url, sleep(5000).then(() => undefined)]);
        if (!url) throw new Error('api not listening');
        const headers: Record<string, string> = { authorization: `Bearer ${auth}` };
        if (opts.key) headers['idempotency-key'] = opts.key;
        const body =
          opts.rawBody ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
        if (body !== undefined) headers['content-type'] = 'application/json';
        const res = await fetch(`${url}${path}`, {
          method,
          headers,
          ...(body !== undefined ? { body } : {}),
          signal: AbortSignal.timeout(10_000),
        });
        const json = (await res.json()) as any;
        const recovering =
          res.status === 503 &&
          (json?.error?.code === 'SERVICE_UNAVAILABLE' ||
            (json?.error?.code === 'SKU_UNAVAILABLE' && !opts.expect503));
        if (recovering && Date.now() < deadline) {
          await sleep(200);
          continue;
        }
        return {
          status: res.status,
          body: json,
          replayed: res.headers.get('idempotent-replayed') === 'true',
        };
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await sleep(200); // a process restarting: the same request again
      }
    }
  }
}

type Cmd = fc.AsyncCommand<Model, Real>;

function compare(
  what: string,
  got: { status: number; body: any; replayed?: boolean },
  want: Expect,
) {
  const desc = `${what}: got ${got.status} ${JSON.stringify(got.body)}, want ${JSON.stringify(want)}`;
  assert.equal(got.status, want.status, desc);
  if (want.code) assert.equal(got.body?.error?.code, want.code, desc);
  if (want.order) {
    assert.equal(got.body.status, want.order.status, desc);
    if (want.order.orderId) assert.equal(got.body.orderId, want.order.orderId, desc);
    if (want.order.replayed !== undefined) assert.equal(got.replayed, want.order.replayed, desc);
  }
}

/** The reader's connection is back (commands fail fast while it reconnects). */
async function untilRedisAnswers(w: World): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await w.reader.redis.ping();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

/**
 * Reservations near their expiry make answers depend on the real clock: wait until every
 * reservation of the SKU is certainly live or certainly swept, then let the model sweep.
 */
async function settle(m: Model, sku?: string): Promise<void> {
  for (;;) {
    const now = Date.now();
    const unsure = [...m.orders.values()].some(
      (o) => (sku === undefined || o.sku === sku) && m.expiry(o, now) === 'unsure',
    );
    if (!unsure) break;
    await sleep(100);
  }
  m.sweep(Date.now());
}

class CreateSku implements Cmd {
  constructor(
    readonly slot: number,
    readonly stock: number,
    readonly limit: number,
    readonly shortTtl: boolean,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const sku = r.skuIds[this.slot]!;
    const ttl = this.shortTtl ? 1 : 600;
    const want = m.createSku(sku, this.stock, this.limit, ttl * 1000);
    const got = await r.send('POST', '/v1/admin/skus', r.world.adminToken, {
      body: {
        sku,
        name: sku,
        stock: this.stock,
        perUserLimit: this.limit,
        reservationTtlSeconds: ttl,
      },
    });
    compare(this.toString(), got, want);
  }
  toString = () =>
    `createSku(s${this.slot}, stock ${this.stock}, limit ${this.limit}${this.shortTtl ? ', ttl 1 s' : ''})`;
}

class Buy implements Cmd {
  constructor(
    readonly user: number,
    readonly slot: number,
    readonly quantity: number,
    readonly key: 'new' | 'retry' | 'other-body',
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const user = r.users[this.user]!;
    const sku = r.skuIds[this.slot]!;
    const last = r.lastKey.get(user);
    const key = this.key === 'new' || !last ? r.freshKey() : last;
    const quantity = this.key === 'other-body' && last ? this.quantity + 1 : this.quantity;
    r.lastKey.set(user, key);
    await settle(m, sku);
    const want = m.buy(user, sku, quantity, key);
    const got = await r.send('POST', `/v1/skus/${sku}/purchases`, await r.jwt(user), {
      body: { quantity },
      key,
      expect503: want.status === 503,
    });
    compare(`${this.toString()} [key ${key}, qty ${quantity}]`, got, want);
    if (got.status === 201 && !got.replayed)
      m.accept(user, sku, quantity, key, got.body.orderId, Date.parse(got.body.expiresAt));
  }
  toString = () => `buy(u${this.user}, s${this.slot}, qty ${this.quantity}, ${this.key} key)`;
}

class ConcurrentBuys implements Cmd {
  constructor(
    readonly slot: number,
    readonly buyers: number,
  ) {}
  check = (m: Readonly<Model>) => m.skus.size > 0;
  async run(m: Model, r: Real) {
    const sku = r.skuIds[this.slot]!;
    await settle(m, sku);
    const s = m.skus.get(sku);
    // With 1 s reservations a buyer retried across a process restart may arrive after an
    // earlier winner's reservation expired: more winners than units is then a correct
    // history the model cannot order. Concurrency is checked on the long-lived SKUs.
    if (s && s.ttlMs <= 1000) return;
    const users = Array.from({ length: this.buyers }, (_, i) => `${r.run}_c${r.freshKey()}_${i}`);
    const keys = users.map(() => r.freshKey());
    const answers = await Promise.all(
      users.map(async (u, i) =>
        r.send('POST', `/v1/skus/${sku}/purchases`, await r.jwt(u), {
          body: { quantity: 1 },
          key: keys[i],
          expect503: s?.paused,
        }),
      ),
    );
    // Any serial order of these requests is a correct history: as many winners as units
    // (every buyer is new, so no limit applies), every loser sold out.
    const wants = users.map((u, i) => m.buy(u, sku, 1, keys[i]!));
    const winners = answers.filter((a) => a.status === 201).length;
    if (!s || s.paused) {
      answers.forEach((a, i) => compare(this.toString(), a, wants[i]!));
      return;
    }
    assert.equal(winners, Math.min(this.buyers, s.available), `${this.toString()}: winners`);
    answers.forEach((a, i) => {
      if (a.status === 201)
        m.accept(users[i]!, sku, 1, keys[i]!, a.body.orderId, Date.parse(a.body.expiresAt));
      else compare(this.toString(), a, { status: 409, code: 'SOLD_OUT' });
    });
  }
  toString = () => `concurrentBuys(s${this.slot}, ${this.buyers} buyers)`;
}

class OrderAction implements Cmd {
  constructor(
    readonly pick: number,
    readonly action: 'cancel' | 'confirm',
    readonly asOther: boolean,
  ) {}
  check = (m: Readonly<Model>) => m.orders.size > 0;
  async run(m: Model, r: Real) {
    const orders = [...m.orders.values()];
    const o = orders[this.pick % orders.length]!;
    await settle(m, o.sku);
    const user = this.asOther ? r.users.find((u) => u !== o.user)! : o.user;
    const want = this.action === 'cancel' ? m.cancel(user, o.id) : m.confirm(user, o.id);
    const got = await r.send('POST', `/v1/orders/${o.id}/${this.action}`, await r.jwt(user), {
      expect503: want.status === 503,
    });
    compare(this.toString(), got, want);
  }
  toString = () => `${this.action}(order #${this.pick}${this.asOther ? ', by another user' : ''})`;
}

class Admin implements Cmd {
  constructor(
    readonly slot: number,
    readonly action: 'restock' | 'pause' | 'resume' | 'repair',
    readonly quantity: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const sku = r.skuIds[this.slot]!;
    await settle(m, sku);
    const want =
      this.action === 'restock'
        ? m.restock(sku, this.quantity)
        : this.action === 'repair'
          ? m.repair(sku)
          : m.setPaused(sku, this.action === 'pause');
    const got = await r.send('POST', `/v1/admin/skus/${sku}/${this.action}`, r.world.adminToken, {
      ...(this.action === 'restock' ? { body: { quantity: this.quantity, reason: 'model' } } : {}),
      expect503: want.status === 503,
    });
    if (this.action === 'repair' && got.status === 503 && got.body?.error?.code === 'REPAIR_FAILED')
      return; // PostgreSQL did not catch up in time: a stated, retryable outcome
    compare(this.toString(), got, want);
  }
  toString = () =>
    `${this.action}(s${this.slot}${this.action === 'restock' ? `, ${this.quantity}` : ''})`;
}

class OddAdminInput implements Cmd {
  constructor(
    readonly slot: number,
    readonly kind: 'nul-reason' | 'control-name' | 'huge-quantity' | 'negative',
  ) {}
  check = () => true;
  async run(_m: Model, r: Real) {
    const sku = r.skuIds[this.slot]!;
    const got =
      this.kind === 'control-name'
        ? await r.send('POST', '/v1/admin/skus', r.world.adminToken, {
            body: { sku: `${sku}x`, name: 'bell\u0007', stock: 1, perUserLimit: 1 },
          })
        : await r.send('POST', `/v1/admin/skus/${sku}/restock`, r.world.adminToken, {
            body:
              this.kind === 'nul-reason'
                ? { quantity: 1, reason: 'a\u0000b' }
                : { quantity: this.kind === 'negative' ? -1 : 2 ** 31, reason: 'odd' },
          });
    compare(this.toString(), got, { status: 400, code: 'VALIDATION_FAILED' });
  }
  toString = () => `oddAdminInput(s${this.slot}, ${this.kind})`;
}

class Wait implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(m: Model) {
    await sleep(this.ms);
    m.sweep(Date.now());
  }
  toString = () => `wait(${this.ms} ms)`;
}

/** A key's memory runs out: what IDEMPOTENCY_TTL_SECONDS does, now. */
class ForgetKey implements Cmd {
  constructor(readonly user: number) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const user = r.users[this.user]!;
    const key = r.lastKey.get(user);
    if (!key) return;
    await r.world.reader.redis.del(r.world.reader.keys.idempotencyClaim(user, key));
    m.forgetKey(user, key);
  }
  toString = () => `forgetLastKey(u${this.user})`;
}

class Nemesis implements Cmd {
  constructor(
    readonly fault:
      'kill-relay' | 'kill-writer' | 'kill-api' | 'kill-redis' | 'flush-redis' | 'stop-kafka',
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const w = r.world;
    w.faults += 1;
    switch (this.fault) {
      case 'kill-relay':
        return w.relay.kill();
      case 'kill-writer':
        return w.writer.kill();
      case 'kill-api':
        return w.apis[0]!.kill();
      case 'kill-redis':
        // AOF with appendfsync always: nothing acknowledged may be lost.
        await w.redis.kill();
        await sleep(300);
        await w.redis.start();
        await untilRedisAnswers(w);
        return;
      case 'flush-redis': {
        // Once PostgreSQL has everything, Redis loses all of it: the engine must rebuild.
        await settle(m);
        await waitForDrain(w.reader, [...m.skus.keys()], 60_000);
        await w.reader.redis.flushall();
        m.loseRedisAfterDrain();
        // Claims come back SKU by SKU as each is rebuilt; until then a key bound to one
        // SKU could be taken for another. Answers may be 503 until rebuilt: wait for that.
        for (const sku of m.skus.keys()) {
          const got = await r.send('GET', `/v1/skus/${sku}`, w.adminToken);
          assert.equal(
            got.status,
            200,
            `${sku} rebuilt after the loss: ${JSON.stringify(got.body)}`,
          );
        }
        return;
      }
      case 'stop-kafka':
        if (!w.kafka) return;
        await w.kafka.stop();
        await sleep(3000);
        await w.kafka.start();
        return;
    }
  }
  toString = () => `nemesis(${this.fault})`;
}

export function commandArbitrary(opts: { kafka: boolean }) {
  const slot = fc.integer({ min: 0, max: 2 });
  const user = fc.integer({ min: 0, max: 4 });
  const faults: (
    'kill-relay' | 'kill-writer' | 'kill-api' | 'kill-redis' | 'flush-redis' | 'stop-kafka'
  )[] = [
    'kill-relay',
    'kill-writer',
    'kill-api',
    'kill-redis',
    'flush-redis',
    ...(opts.kafka ? (['stop-kafka'] as const) : []),
  ];
  return [
    fc
      .tuple(slot, fc.integer({ min: 0, max: 8 }), fc.integer({ min: 1, max: 3 }), fc.boolean())
      .map(([s, stock, limit, short]) => new CreateSku(s, stock, limit, short)),
    fc
      .tuple(
        user,
        slot,
        fc.integer({ min: 1, max: 2 }),
        fc.constantFrom('new', 'new', 'retry', 'other-body'),
      )
      .map(([u, s, q, k]) => new Buy(u, s, q, k as 'new' | 'retry' | 'other-body')),
    fc.tuple(slot, fc.integer({ min: 2, max: 12 })).map(([s, n]) => new ConcurrentBuys(s, n)),
    fc
      .tuple(fc.nat(), fc.constantFrom('cancel', 'confirm'), fc.boolean())
      .map(([p, a, o]) => new OrderAction(p, a as 'cancel' | 'confirm', o)),
    fc
      .tuple(
        slot,
        fc.constantFrom('restock', 'pause', 'resume', 'repair'),
        fc.integer({ min: 1, max: 5 }),
      )
      .map(([s, a, q]) => new Admin(s, a as 'restock' | 'pause' | 'resume' | 'repair', q)),
    fc
      .tuple(slot, fc.constantFrom('nul-reason', 'control-name', 'huge-quantity', 'negative'))
      .map(
        ([s, k]) =>
          new OddAdminInput(s, k as 'nul-reason' | 'control-name' | 'huge-quantity' | 'negative'),
      ),
    fc.constantFrom(600, 1800).map((ms) => new Wait(ms)),
    user.map((u) => new ForgetKey(u)),
    fc.constantFrom(...faults).map((f) => new Nemesis(f)),
    fc.constantFrom(...faults).map((f) => new Nemesis(f)),
  ];
}
