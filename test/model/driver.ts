// The model-based test's commands: each asks the model what the engine must answer, sends
// the real request to one of the engine's API processes, compares, and moves the model.
// Nemesis commands kill processes, stop Kafka, or make Redis lose its data in between.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import type { Engine } from '../../src/engine.js';
import { skuInPartition, token, waitForDrain } from '../helpers.js';
import type { AlertReceiver } from '../support/alert-receiver.js';
import type { OwnKafka } from '../support/kafka-broker.js';
import type { OwnRedis } from '../support/redis-server.js';
import type { Supervised } from '../support/processes.js';
import { Model, SWEEP_SLACK_MS, type Expect } from './model.js';

export interface World {
  apis: Supervised[];
  relay: Supervised;
  writer: Supervised;
  sweeper: Supervised;
  /** Compares the stores twice a second; what it opens must be resolved by the end of a run. */
  reconciler: Supervised;
  /** Receives the reconciler's alert webhooks (signatures verified). */
  alerts: AlertReceiver;
  redis: OwnRedis;
  /** In-process engine without roles: reads both stores, plays Redis's clock for keys. */
  reader: Engine;
  adminToken: string;
  /** The run's own broker, which the nemesis may kill or freeze (absent: no Kafka faults). */
  kafka?: OwnKafka;
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
    opts: {
      body?: unknown;
      rawBody?: string;
      key?: string;
      expect503?: boolean;
      /** Per attempt: a repair may wait up to 30 s for PostgreSQL by design. */
      timeoutMs?: number;
    } = {},
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
          signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
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

export type Cmd = fc.AsyncCommand<Model, Real>;

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
    await buyAndJudge(m, r, `${this.toString()} [key ${key}, qty ${quantity}]`, {
      user,
      sku,
      quantity,
      key,
    });
  }
  toString = () => `buy(u${this.user}, s${this.slot}, qty ${this.quantity}, ${this.key} key)`;
}

/** One purchase, judged against the model; an order the engine made joins the model. */
async function buyAndJudge(
  m: Model,
  r: Real,
  what: string,
  p: { user: string; sku: string; quantity: number; key: string },
): Promise<void> {
  const want = m.buy(p.user, p.sku, p.quantity, p.key);
  const got = await r.send('POST', `/v1/skus/${p.sku}/purchases`, await r.jwt(p.user), {
    body: { quantity: p.quantity },
    key: p.key,
    expect503: want.status === 503,
  });
  compare(what, got, want);
  if (got.status === 201 && !got.replayed)
    m.accept(p.user, p.sku, p.quantity, p.key, got.body.orderId, Date.parse(got.body.expiresAt));
}

/** Starts a repair; its answer is awaited later (a rejection meanwhile is not unhandled). */
function startRepair(r: Real, sku: string, expect503?: boolean) {
  const repair = r.send('POST', `/v1/admin/skus/${sku}/repair`, r.world.adminToken, {
    expect503,
    timeoutMs: REPAIR_TIMEOUT_MS,
  });
  repair.catch(() => undefined);
  return repair;
}

/**
 * A repair that failed because PostgreSQL did not catch up in time: a stated, retryable
 * outcome, which paused and resumed all the same (seed 20261206: the model counts both).
 */
const repairFailed = (got: { status: number; body: any }) =>
  got.status === 503 && got.body?.error?.code === 'REPAIR_FAILED';

/** A repair raced by other requests, once answered: the model repairs too, and compares. */
function judgeRepair(
  what: string,
  m: Model,
  sku: string,
  repaired: { status: number; body: any },
): void {
  m.sweepable(sku, Date.now()); // the repair's pause held the sweeper
  const want = m.repair(sku);
  if (!repairFailed(repaired)) compare(`${what}: the repair`, repaired, want);
}

/** New buyers, one unit each, one fresh key each. */
function newBuyers(r: Real, n: number): { user: string; key: string }[] {
  return Array.from({ length: n }, (_, i) => ({
    user: `${r.run}_c${r.freshKey()}_${i}`,
    key: r.freshKey(),
  }));
}

function buyOnce(r: Real, sku: string, b: { user: string; key: string }, expect503?: boolean) {
  return r.jwt(b.user).then((jwt) =>
    r.send('POST', `/v1/skus/${sku}/purchases`, jwt, {
      body: { quantity: 1 },
      key: b.key,
      expect503,
    }),
  );
}

/**
 * Buyers that raced each other: any serial order of their requests is a correct history, so
 * there are as many winners as units (every buyer is new, so no limit applies) and every
 * loser is sold out. The model takes the winners' orders.
 */
function judgeRace(
  what: string,
  m: Model,
  sku: string,
  buyers: { user: string; key: string }[],
  answers: { status: number; body: any; replayed: boolean }[],
): void {
  const s = m.skus.get(sku);
  const wants = buyers.map((b) => m.buy(b.user, sku, 1, b.key));
  if (!s || s.paused) {
    answers.forEach((a, i) => compare(what, a, wants[i]!));
    return;
  }
  const winners = answers.filter((a) => a.status === 201).length;
  assert.equal(winners, Math.min(buyers.length, s.available), `${what}: winners`);
  answers.forEach((a, i) => {
    const b = buyers[i]!;
    if (a.status === 201)
      m.accept(b.user, sku, 1, b.key, a.body.orderId, Date.parse(a.body.expiresAt));
    else compare(what, a, { status: 409, code: 'SOLD_OUT' });
  });
}

/**
 * With 1 s reservations a buyer retried across a restart or a hang may arrive after an
 * earlier winner's reservation expired: more winners than units is then a correct history
 * the model cannot order. Races are checked on the long-lived SKUs.
 */
const raceable = (m: Model, sku: string) => (m.skus.get(sku)?.ttlMs ?? Infinity) > 1000;

/**
 * New buyers race for a SKU, optionally while an operator repairs it: the repair never loses
 * or adds a unit, and buyers who meet its pause retry (SKU_UNAVAILABLE) until it ends.
 */
class ConcurrentBuys implements Cmd {
  constructor(
    readonly slot: number,
    readonly buyers: number,
    readonly withRepair = false,
  ) {}
  check = (m: Readonly<Model>) => m.skus.size > 0;
  async run(m: Model, r: Real) {
    const sku = r.skuIds[this.slot]!;
    await settle(m, sku);
    if (!raceable(m, sku)) return;
    const buyers = newBuyers(r, this.buyers);
    const paused = m.skus.get(sku)?.paused;
    const repair = this.withRepair ? startRepair(r, sku, paused) : undefined;
    const answers = await Promise.all(buyers.map((b) => buyOnce(r, sku, b, paused)));
    judgeRace(this.toString(), m, sku, buyers, answers);
    const repaired = await repair;
    if (repaired) judgeRepair(this.toString(), m, sku, repaired);
  }
  toString = () =>
    `concurrentBuys(s${this.slot}, ${this.buyers} buyers${this.withRepair ? ', while repaired' : ''})`;
}

/**
 * Redis hangs (SIGSTOP: connections stay open) while buyers arrive. Every request answers
 * while it hangs, with 503 SERVICE_UNAVAILABLE and Retry-After, none waits for Redis; a
 * request may still run once Redis wakes (it was on the wire), so each buyer then retries
 * with the same key and the race is judged on the retries' answers.
 */
class HangRedis implements Cmd {
  constructor(
    readonly slot: number,
    readonly buyers: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const w = r.world;
    const sku = r.skuIds[this.slot]!;
    await settle(m);
    w.faults += 1;
    // Buyers only where the race can be judged (an attempt may still run after the hang,
    // so every buyer must be resolved by a retry); a read of the SKU always.
    const buyers = raceable(m, sku) ? newBuyers(r, this.buyers) : [];
    const requests = [
      { path: `/v1/skus/${sku}`, auth: w.adminToken, key: undefined },
      ...(await Promise.all(
        buyers.map(async (b) => ({
          path: `/v1/skus/${sku}/purchases`,
          auth: await r.jwt(b.user),
          key: b.key,
        })),
      )),
    ];
    const url = await w.apis[1]!.proc.url;
    w.redis.freeze();
    let during: { status: number; code?: string; retryAfter: string | null }[];
    try {
      during = await Promise.all(
        requests.map(async (q) => {
          const res = await fetch(`${url}${q.path}`, {
            method: q.key ? 'POST' : 'GET',
            headers: {
              authorization: `Bearer ${q.auth}`,
              ...(q.key ? { 'idempotency-key': q.key, 'content-type': 'application/json' } : {}),
            },
            ...(q.key ? { body: JSON.stringify({ quantity: 1 }) } : {}),
            signal: AbortSignal.timeout(HANG_MS),
          });
          const body = (await res.json()) as { error?: { code?: string } };
          return {
            status: res.status,
            code: body.error?.code,
            retryAfter: res.headers.get('retry-after'),
          };
        }),
      ).catch((err: unknown) => {
        throw new Error(`a request waited for the hung Redis (${String(err)})`);
      });
    } finally {
      w.redis.thaw();
    }
    for (const d of during)
      assert.deepEqual(
        { status: d.status, code: d.code, retry: d.retryAfter !== null },
        { status: 503, code: 'SERVICE_UNAVAILABLE', retry: true },
        `${this.toString()}: the answer while Redis hung`,
      );
    await untilRedisAnswers(w);
    // The sweeper was held too: let it return what ran out meanwhile before judging.
    await sleep(SWEEP_SLACK_MS + 500);
    await settle(m);
    if (buyers.length === 0) return;
    const paused = m.skus.get(sku)?.paused;
    const answers = await Promise.all(buyers.map((b) => buyOnce(r, sku, b, paused)));
    judgeRace(
      this.toString(),
      m,
      sku,
      buyers,
      answers.map((a) => ({ ...a, replayed: false })),
    );
  }
  toString = () => `nemesis(hang-redis while s${this.slot} has ${this.buyers} buyers)`;
}

/**
 * A repair answers within its 30 s wait for PostgreSQL; sent again after a client-side
 * timeout, it would pause and resume once more (two events the model does not count).
 */
const REPAIR_TIMEOUT_MS = 45_000;

/** How long a request may take while Redis hangs before the test says it waited for Redis. */
const HANG_MS = 6000;

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
    const want =
      this.action === 'cancel' ? m.cancel(user, o.id) : m.confirm(user, o.id, Date.now());
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
      ...(this.action === 'repair' ? { timeoutMs: REPAIR_TIMEOUT_MS } : {}),
    });
    // A resume or a repair's own pause ending: the sweeper returns what came due meanwhile.
    if (this.action === 'resume' || this.action === 'repair') m.sweepable(sku, Date.now());
    if (this.action === 'repair' && repairFailed(got)) return;
    compare(this.toString(), got, want);
  }
  toString = () =>
    `${this.action}(s${this.slot}${this.action === 'restock' ? `, ${this.quantity}` : ''})`;
}

/**
 * An operator repairs a SKU while its orders change: a restock, a cancel and a confirm of
 * its live orders are sent `delayMs` after the repair, so some meet its pause. Whatever the
 * interleaving, each ends well (a change that meets the pause answers 503 and is retried
 * until the SKU resumes), and the final state is the same: the repair must neither lose a
 * change nor reuse a sequence number (a change landing between its drained check and its
 * reload would).
 */
class RepairWhileChanging implements Cmd {
  constructor(
    readonly slot: number,
    readonly delayMs: number,
  ) {}
  check = (m: Readonly<Model>) => m.skus.size > 0;
  async run(m: Model, r: Real) {
    const sku = r.skuIds[this.slot]!;
    await settle(m, sku);
    const s = m.skus.get(sku);
    // Long reservations only, so no order comes due while the repair holds the SKU.
    if (!s || s.paused || !raceable(m, sku)) return;
    const live = [...m.orders.values()].filter((o) => o.sku === sku && o.status === 'reserved');
    const [toCancel, toConfirm] = live;
    const admin = r.world.adminToken;
    const repair = startRepair(r, sku);
    await sleep(this.delayMs);
    const [restocked, cancelled, confirmed] = await Promise.all([
      r.send('POST', `/v1/admin/skus/${sku}/restock`, admin, {
        body: { quantity: 1, reason: 'model' },
      }),
      toCancel && r.send('POST', `/v1/orders/${toCancel.id}/cancel`, await r.jwt(toCancel.user)),
      toConfirm &&
        r.send('POST', `/v1/orders/${toConfirm.id}/confirm`, await r.jwt(toConfirm.user)),
    ]);
    const repaired = await repair;
    // In the model, as if each change came before the repair: the end state is the same.
    compare(`${this.toString()}: the restock`, restocked, m.restock(sku, 1));
    if (toCancel)
      compare(`${this.toString()}: the cancel`, cancelled!, m.cancel(toCancel.user, toCancel.id));
    if (toConfirm)
      compare(
        `${this.toString()}: the confirm`,
        confirmed!,
        m.confirm(toConfirm.user, toConfirm.id, Date.now()),
      );
    judgeRepair(this.toString(), m, sku, repaired);
  }
  toString = () => `repair(s${this.slot}, while orders change after ${this.delayMs} ms)`;
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

/**
 * A key's memory runs out (what IDEMPOTENCY_TTL_SECONDS does, now), and its buyer sends the
 * same purchase with it again: a new purchase, whose order must get a row of its own.
 */
class ForgetKey implements Cmd {
  constructor(readonly user: number) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const user = r.users[this.user]!;
    const key = r.lastKey.get(user);
    if (!key) return;
    const engine = r.world.reader;
    // The key's time has run out, so its order is that old too: a rebuild after a loss of
    // Redis's data must not bring the claim back (it restores claims by order age).
    const orderId = m.claims.get(`${user}|${key}`)?.orderId;
    if (orderId) {
      await waitForDrain(engine, [m.orders.get(orderId)!.sku], 60_000);
      const ttlMs = engine.cfg.IDEMPOTENCY_TTL_SECONDS * 1000;
      await engine.db.order.update({
        where: { id: orderId },
        data: { createdAt: new Date(Date.now() - ttlMs - 60_000) },
      });
    }
    const claimKey = engine.keys.idempotencyClaim(user, key);
    await engine.redis.del(claimKey);
    // A rebuild's memory of the claim ends with the claim (its stored end, which this run
    // cannot make pass): gone too.
    if (orderId)
      await engine.redis.hdel(
        engine.keys.forSku(m.orders.get(orderId)!.sku).restoredClaims,
        claimKey,
      );
    m.forgetKey(user, key);
    // The key comes back, as the client may send it again once it is forgotten: for the
    // same request again, which is now a new purchase with an order (and a row) of its own.
    const o = orderId ? m.orders.get(orderId) : undefined;
    if (!o) return;
    await settle(m, o.sku);
    await buyAndJudge(m, r, `${this.toString()}: the key reused [key ${key}]`, {
      user,
      sku: o.sku,
      quantity: o.quantity,
      key,
    });
  }
  toString = () => `forgetLastKey(u${this.user})`;
}

/**
 * The buyers of the latest orders retry them, as a client whose answer was lost in the
 * fault would: each retry must replay its order, never buy again (the claims must have
 * survived the fault, or come back with the rebuild). Random buys alone retried a key
 * across a loss of Redis's data too seldom to find a rebuild that forgot the claims.
 */
async function retryLastPurchases(m: Model, r: Real, what: string): Promise<void> {
  await settle(m);
  const latest = [...m.claims].filter(([, c]) => c.orderId).slice(-RETRIED_AFTER_FAULT);
  await Promise.all(
    latest.map(async ([claimKey, c]) => {
      const at = claimKey.indexOf('|');
      const user = claimKey.slice(0, at);
      const key = claimKey.slice(at + 1);
      await buyAndJudge(m, r, `${what}: ${user} retries key ${key}`, {
        user,
        sku: c.sku,
        quantity: c.quantity,
        key,
      });
    }),
  );
}

/** How many of the latest orders are retried after a fault of Redis. */
const RETRIED_AFTER_FAULT = 6;

type Fault =
  | 'kill-relay'
  | 'kill-writer'
  | 'kill-api'
  | 'kill-redis'
  | 'flush-redis'
  | 'stop-kafka'
  | 'pause-kafka';

class Nemesis implements Cmd {
  constructor(readonly fault: Fault) {}
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
        // No reservation can be returned while Redis is away: the sweeper returns what came
        // due meanwhile once it answers again. Judging as if it had swept all along found
        // a reservation "certainly expired" still live (seed 20261205, a cancel answered 200).
        for (const sku of m.skus.keys()) m.sweepable(sku, Date.now());
        await retryLastPurchases(m, r, this.toString());
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
          m.sweepable(sku, Date.now()); // nothing of it could expire until rebuilt
        }
        await retryLastPurchases(m, r, this.toString());
        return;
      }
      case 'stop-kafka':
        if (!w.kafka) return;
        await w.kafka.kill();
        await sleep(3000);
        await w.kafka.start();
        return;
      case 'pause-kafka':
        // A stalled broker (a long GC pause, a frozen VM): it holds its connections open
        // and answers nothing for a few seconds, then goes on where it was.
        if (!w.kafka) return;
        w.kafka.pause(true);
        await sleep(2000 + (w.faults % 4) * 1000);
        w.kafka.pause(false);
        return;
    }
  }
  toString = () => `nemesis(${this.fault})`;
}

/** The same commands whatever the run: the Kafka faults are no-ops without a broker of its own. */
export function commandArbitrary() {
  const slot = fc.integer({ min: 0, max: 2 });
  const user = fc.integer({ min: 0, max: 4 });
  const crashes: Fault[] = ['kill-relay', 'kill-writer', 'kill-api', 'kill-redis', 'flush-redis'];
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
    // A broker restart costs about 20 s of the run, a stall a few: stalls come more often.
    fc.constantFrom<Fault>(...crashes, 'stop-kafka').map((f) => new Nemesis(f)),
    fc.constantFrom<Fault>(...crashes, 'pause-kafka', 'pause-kafka').map((f) => new Nemesis(f)),
    fc.tuple(slot, fc.integer({ min: 1, max: 6 })).map(([s, n]) => new HangRedis(s, n)),
    fc.tuple(slot, fc.integer({ min: 2, max: 8 })).map(([s, n]) => new ConcurrentBuys(s, n, true)),
    fc
      .tuple(slot, fc.constantFrom(0, 10, 30, 60, 120))
      .map(([s, ms]) => new RepairWhileChanging(s, ms)),
  ];
}

/**
 * A printed command list back into commands: `[buy(u1, s0, qty 1, new key),nemesis(kill-redis)]`,
 * as a failure prints it, replays on its own (`npm run soak -- --story '…'`), without
 * regenerating the seed's earlier runs and shrink steps.
 */
export function parseStory(text: string): Cmd[] {
  const body = text.replace(/\/\*.*?\*\//g, '').trim();
  const calls = [...body.matchAll(/([A-Za-z]+)\(([^)]*)\)/g)];
  const rest = body.replace(/([A-Za-z]+)\(([^)]*)\)/g, '').replace(/[[\],\s]/g, '');
  if (rest !== '') throw new Error(`not a command list: ${rest.slice(0, 80)}`);
  return calls.map(([whole, name, args]) => {
    const cmd = parseCommand(name!, args!);
    if (!cmd || cmd.toString() !== whole) throw new Error(`not a command: ${whole}`);
    return cmd;
  });
}

const int = (s: string | undefined) => Number(s);

function parseCommand(name: string, args: string): Cmd | undefined {
  let a: RegExpExecArray | null;
  switch (name) {
    case 'createSku':
      a = /^s(\d), stock (\d+), limit (\d+)(, ttl 1 s)?$/.exec(args);
      return a ? new CreateSku(int(a[1]), int(a[2]), int(a[3]), a[4] !== undefined) : undefined;
    case 'buy':
      a = /^u(\d), s(\d), qty (\d+), (new|retry|other-body) key$/.exec(args);
      return a
        ? new Buy(int(a[1]), int(a[2]), int(a[3]), a[4] as 'new' | 'retry' | 'other-body')
        : undefined;
    case 'concurrentBuys':
      a = /^s(\d), (\d+) buyers(, while repaired)?$/.exec(args);
      return a ? new ConcurrentBuys(int(a[1]), int(a[2]), a[3] !== undefined) : undefined;
    case 'cancel':
    case 'confirm':
      a = /^order #(\d+)(, by another user)?$/.exec(args);
      return a ? new OrderAction(int(a[1]), name, a[2] !== undefined) : undefined;
    case 'restock':
      a = /^s(\d), (\d+)$/.exec(args);
      return a ? new Admin(int(a[1]), name, int(a[2])) : undefined;
    case 'repair':
      a = /^s(\d), while orders change after (\d+) ms$/.exec(args);
      if (a) return new RepairWhileChanging(int(a[1]), int(a[2]));
      a = /^s(\d)$/.exec(args);
      return a ? new Admin(int(a[1]), name, 1) : undefined;
    case 'pause':
    case 'resume':
      // The quantity is not printed and only restock reads it.
      a = /^s(\d)$/.exec(args);
      return a ? new Admin(int(a[1]), name, 1) : undefined;
    case 'oddAdminInput':
      a = /^s(\d), (nul-reason|control-name|huge-quantity|negative)$/.exec(args);
      return a
        ? new OddAdminInput(
            int(a[1]),
            a[2] as 'nul-reason' | 'control-name' | 'huge-quantity' | 'negative',
          )
        : undefined;
    case 'wait':
      a = /^(\d+) ms$/.exec(args);
      return a ? new Wait(int(a[1])) : undefined;
    case 'forgetLastKey':
      a = /^u(\d)$/.exec(args);
      return a ? new ForgetKey(int(a[1])) : undefined;
    case 'nemesis':
      a = /^hang-redis while s(\d) has (\d+) buyers$/.exec(args);
      if (a) return new HangRedis(int(a[1]), int(a[2]));
      a = /^(kill-relay|kill-writer|kill-api|kill-redis|flush-redis|stop-kafka|pause-kafka)$/.exec(
        args,
      );
      return a ? new Nemesis(a[1] as Fault) : undefined;
  }
  return undefined;
}
