// A pure reference model of what the engine promises to buyers and operators: SKUs,
// orders and their lifecycle, per-user holdings, idempotency keys, per-SKU sequences.
// No I/O and no clock of its own: time enters as arguments, so the model-based test can
// say "this reservation may or may not have expired yet" where the real clock decides.

export type Status = 'reserved' | 'confirmed' | 'cancelled' | 'expired';

export interface ModelSku {
  id: string;
  supplied: number;
  available: number;
  limit: number;
  ttlMs: number;
  paused: boolean;
  /**
   * When the sweeper could last start returning this SKU's units again (it cannot while
   * the SKU is paused, being repaired or rebuilt, or while Redis is away): 0 if never held.
   */
  sweepableFrom: number;
  /** Events the SKU has issued: Redis's `seq`, PostgreSQL's last_sequence once drained. */
  seq: number;
  holders: Map<string, number>;
}

export interface ModelOrder {
  id: string;
  sku: string;
  user: string;
  quantity: number;
  status: Status;
  /** Redis server time, ms, as the engine answered it. */
  expiresAt: number;
}

export interface Claim {
  sku: string;
  quantity: number;
  /** Undefined until an order was made under the claim. */
  orderId?: string;
}

/** An answer the engine may give: HTTP status, error code or the order it answers. */
export interface Expect {
  status: number;
  code?: string;
  order?: { orderId?: string; status: Status; replayed?: boolean };
}

export const SWEEP_SLACK_MS = 1500;

export class Model {
  readonly skus = new Map<string, ModelSku>();
  readonly orders = new Map<string, ModelOrder>();
  /** `${user}|${key}` -> the request the key is bound to. */
  readonly claims = new Map<string, Claim>();

  createSku(id: string, stock: number, limit: number, ttlMs: number): Expect {
    const s = this.skus.get(id);
    // The same definition again is the creation replayed (a retry after a lost answer).
    if (s)
      return s.supplied === stock && s.limit === limit && s.ttlMs === ttlMs
        ? { status: 201 }
        : { status: 409, code: 'SKU_EXISTS' };
    this.skus.set(id, {
      id,
      supplied: stock,
      available: stock,
      limit,
      ttlMs,
      paused: false,
      sweepableFrom: 0,
      seq: 0,
      holders: new Map(),
    });
    return { status: 201 };
  }

  /**
   * Whether a reservation is certainly live, certainly expired (swept), past its expiry
   * but held (its SKU is paused: the sweeper returns nothing of it until it resumes), or in
   * the window where the real clock decides.
   */
  expiry(o: ModelOrder, now: number): 'live' | 'held' | 'expired' | 'unsure' {
    if (o.status !== 'reserved') return 'live';
    if (now < o.expiresAt - 200) return 'live';
    const s = this.skus.get(o.sku)!;
    if (s.paused) return now > o.expiresAt + 200 ? 'held' : 'unsure';
    if (now > this.sweptBy(o)) return 'expired';
    return 'unsure';
  }

  /** The time by which the sweeper has certainly returned a reservation's units. */
  sweptBy(o: ModelOrder): number {
    return Math.max(o.expiresAt, this.skus.get(o.sku)!.sweepableFrom) + SWEEP_SLACK_MS;
  }

  /** The sweeper can act on the SKU again from `now` (a resume, a repair or a rebuild ended). */
  sweepable(skuId: string, now: number): void {
    const s = this.skus.get(skuId);
    if (s) s.sweepableFrom = now;
  }

  /** The sweeper expired it: units back, exactly once. */
  expire(orderId: string): void {
    const o = this.orders.get(orderId);
    if (!o || o.status !== 'reserved') return;
    this.release(o, 'expired');
  }

  /** Every reservation certainly past its expiry, as the sweeper leaves them. */
  sweep(now: number): void {
    for (const o of this.orders.values()) if (this.expiry(o, now) === 'expired') this.expire(o.id);
  }

  private release(o: ModelOrder, to: 'cancelled' | 'expired'): void {
    const s = this.skus.get(o.sku)!;
    s.available += o.quantity;
    const held = (s.holders.get(o.user) ?? 0) - o.quantity;
    if (held > 0) s.holders.set(o.user, held);
    else s.holders.delete(o.user);
    o.status = to;
    s.seq += 1;
  }

  /**
   * A purchase as the engine decides it, before the script runs: the key's claim. The
   * answer for a request whose outcome the model knows; `undefined` for "any outcome the
   * script may give" never happens here: purchases are decided deterministically.
   */
  buy(user: string, skuId: string, quantity: number, key: string): Expect {
    const claimKey = `${user}|${key}`;
    const claim = this.claims.get(claimKey);
    if (claim && (claim.sku !== skuId || claim.quantity !== quantity))
      return { status: 422, code: 'IDEMPOTENCY_KEY_REUSED' };
    if (claim?.orderId) {
      const o = this.orders.get(claim.orderId)!;
      return { status: 201, order: { orderId: o.id, status: o.status, replayed: true } };
    }
    const s = this.skus.get(skuId);
    if (!s) return { status: 404, code: 'SKU_NOT_FOUND' };
    // The script claims the key and decides in one step: a refused attempt leaves no
    // claim behind (its key binds nothing, and a retry decides again); an earlier claim
    // that made no order stays as it was.
    if (s.paused) return { status: 503, code: 'SKU_UNAVAILABLE' };
    const held = s.holders.get(user) ?? 0;
    if (held + quantity > s.limit) return { status: 409, code: 'LIMIT_EXCEEDED' };
    if (s.available < quantity) return { status: 409, code: 'SOLD_OUT' };
    if (!claim) this.claims.set(claimKey, { sku: skuId, quantity });
    return { status: 201, order: { status: 'reserved', replayed: false } };
  }

  /** Records an order the engine made (its id and expiry come from the engine's answer). */
  accept(
    user: string,
    skuId: string,
    quantity: number,
    key: string,
    orderId: string,
    expiresAt: number,
  ): void {
    const s = this.skus.get(skuId)!;
    s.available -= quantity;
    s.holders.set(user, (s.holders.get(user) ?? 0) + quantity);
    s.seq += 1;
    this.orders.set(orderId, {
      id: orderId,
      sku: skuId,
      user,
      quantity,
      status: 'reserved',
      expiresAt,
    });
    this.claims.get(`${user}|${key}`)!.orderId = orderId;
  }

  cancel(user: string, orderId: string): Expect {
    const o = this.orders.get(orderId);
    if (!o || o.user !== user) return { status: 404, code: 'ORDER_NOT_FOUND' };
    if (o.status === 'cancelled') return { status: 200, order: { status: 'cancelled' } };
    if (o.status === 'expired') return { status: 409, code: 'ORDER_NOT_CANCELLABLE' };
    if (this.skus.get(o.sku)!.paused) return { status: 503, code: 'SKU_UNAVAILABLE' };
    this.release(o, 'cancelled');
    return { status: 200, order: { status: 'cancelled' } };
  }

  confirm(user: string, orderId: string, now: number): Expect {
    const o = this.orders.get(orderId);
    if (!o || o.user !== user) return { status: 404, code: 'ORDER_NOT_FOUND' };
    if (o.status === 'confirmed') return { status: 200, order: { status: 'confirmed' } };
    // Past its expiry is expired for a payment, swept or not (held by a pause).
    if (o.status === 'expired' || (o.status === 'reserved' && now >= o.expiresAt))
      return { status: 409, code: 'ORDER_EXPIRED' };
    if (o.status === 'cancelled') return { status: 409, code: 'ORDER_NOT_CONFIRMABLE' };
    if (this.skus.get(o.sku)!.paused) return { status: 503, code: 'SKU_UNAVAILABLE' };
    o.status = 'confirmed';
    this.skus.get(o.sku)!.seq += 1;
    return { status: 200, order: { status: 'confirmed' } };
  }

  restock(skuId: string, quantity: number): Expect {
    const s = this.skus.get(skuId);
    if (!s) return { status: 404, code: 'SKU_NOT_FOUND' };
    if (s.paused) return { status: 503, code: 'SKU_UNAVAILABLE' };
    s.available += quantity;
    s.supplied += quantity;
    s.seq += 1;
    return { status: 200 };
  }

  setPaused(skuId: string, paused: boolean): Expect {
    const s = this.skus.get(skuId);
    if (!s) return { status: 404, code: 'SKU_NOT_FOUND' };
    if (s.paused !== paused) {
      s.paused = paused;
      s.seq += 1;
    }
    return { status: 200 };
  }

  /** A repair pauses, reloads what PostgreSQL holds (the same) and resumes: two events. */
  repair(skuId: string): Expect {
    const s = this.skus.get(skuId);
    if (!s) return { status: 404, code: 'SKU_NOT_FOUND' };
    if (!s.paused) s.seq += 2;
    return { status: 200 };
  }

  /** An Idempotency-Key's time ran out. */
  forgetKey(user: string, key: string): void {
    this.claims.delete(`${user}|${key}`);
  }

  /**
   * Redis lost its data once PostgreSQL had everything: the engine rebuilds SKUs, claims
   * of orders and the orders themselves; claims that never led to an order are gone.
   */
  loseRedisAfterDrain(): void {
    for (const [k, c] of this.claims) if (!c.orderId) this.claims.delete(k);
  }

  /** Invariants of design.md that hold in the model itself. */
  check(): string[] {
    const problems: string[] = [];
    for (const s of this.skus.values()) {
      let live = 0;
      const perUser = new Map<string, number>();
      for (const o of this.orders.values())
        if (o.sku === s.id && (o.status === 'reserved' || o.status === 'confirmed')) {
          live += o.quantity;
          perUser.set(o.user, (perUser.get(o.user) ?? 0) + o.quantity);
        }
      if (s.available < 0) problems.push(`${s.id}: oversold (available ${s.available})`);
      if (s.available + live !== s.supplied)
        problems.push(`${s.id}: available ${s.available} + held ${live} != supplied ${s.supplied}`);
      for (const [u, n] of perUser) {
        if (n > s.limit) problems.push(`${s.id}: user ${u} holds ${n} > limit ${s.limit}`);
        if (s.holders.get(u) !== n) problems.push(`${s.id}: holders of ${u} disagree`);
      }
    }
    return problems;
  }
}
