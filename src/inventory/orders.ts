// The order lifecycle after the purchase: cancel (by its owner), confirm (payment done),
// expire (the sweeper), and reads. Each change is one script that checks the order's state,
// so units go back exactly once; PostgreSQL answers for orders Redis no longer keeps.
import { InventoryPart, type InventoryContext } from './types.js';
import { AppError } from '../shared/errors.js';
import type { Rebuilder } from './rebuild.js';
import { orderReply, skuUnavailable, ScriptCode, scriptError } from './script-codes.js';
import { iso, type Order, type OrderStatus } from './types.js';
import { parseOrder, type OrderRecord } from '../shared/keys.js';

/**
 * What the sweeper's call did to one due reservation (see Orders.expire): 'broken' is kept
 * too, but a key of it holds the wrong type or a malformed order (an operator must look).
 */
export type ExpiryOutcome = 'expired' | 'dropped' | 'kept' | 'broken';

export class Orders extends InventoryPart {
  constructor(
    ctx: InventoryContext,
    private readonly rebuild: Rebuilder,
  ) {
    super(ctx);
  }

  /** The owner cancels: units back exactly once (release-5.lua); the sweeper uses expireMany. */
  async cancel(userId: string, orderId: string): Promise<Order> {
    const located = await this.locate(orderId);
    if (!located) return this.endedOrderFromDb(orderId, userId, 'cancelled', 'cancel');
    const k = this.keys.forSku(located.sku);
    const reply = await this.redis.fsRelease(
      k.sku,
      k.users,
      k.order(orderId),
      k.expiries,
      k.events,
      located.sku,
      orderId,
      'cancel',
      userId,
      this.opts.orderRetentionSeconds,
    );
    const done = orderReply(reply, orderId, located.sku);
    if (done) {
      if (done.code === ScriptCode.Done) this.soldOut.clear(located.sku);
      return done.order;
    }
    const code = Number(reply[0]);
    if (code === ScriptCode.SkuStateMissing) await this.rebuild.onStateMissing(located.sku);
    throw scriptError(code, reply, 'cancel');
  }

  /**
   * Expires one due reservation (the sweeper). `expired`: its units are back; `dropped`:
   * it had ended already, and its expiry index entry is gone; `kept`: it stays in the index
   * for a later sweep (not due by Redis's clock, SKU paused or being rebuilt).
   */
  async expire(skuId: string, orderId: string): Promise<ExpiryOutcome> {
    return (await this.expireMany(this.keys.partitionOf(skuId), [{ sku: skuId, orderId }]))[0]!;
  }

  /** Expires due reservations of one partition in one script call; one outcome each. */
  async expireMany(
    partition: number,
    due: readonly { sku: string; orderId: string }[],
  ): Promise<ExpiryOutcome[]> {
    if (due.length === 0) return [];
    const keys = [this.keys.expiries(partition), this.keys.events(partition)];
    const args: string[] = [String(this.opts.orderRetentionSeconds)];
    for (const { sku, orderId } of due) {
      const k = this.keys.forSku(sku);
      if (k.partition !== partition)
        throw new RangeError(`${sku} is not in partition ${partition}`);
      keys.push(k.sku, k.users, k.order(orderId));
      args.push(sku, orderId);
    }
    const codes = await this.redis.fsExpire(keys.length, ...keys, ...args);
    return codes.map((c, i) => {
      const code = Number(c);
      if (code === ScriptCode.Done) {
        this.soldOut.clear(due[i]!.sku);
        return 'expired';
      }
      const dropped =
        code === ScriptCode.Unchanged ||
        code === ScriptCode.OrderNotFound ||
        code === ScriptCode.NotReleasable;
      if (dropped) return 'dropped';
      return code === ScriptCode.WrongKeyType ? 'broken' : 'kept';
    });
  }

  /** Confirms a reservation; userId undefined means an admin (payment service) confirms. */
  async confirm(userId: string | undefined, orderId: string): Promise<Order> {
    const located = await this.locate(orderId);
    if (!located) return this.endedOrderFromDb(orderId, userId, 'confirmed', 'confirm');
    const k = this.keys.forSku(located.sku);
    const reply = await this.redis.fsConfirm(
      k.sku,
      k.order(orderId),
      k.expiries,
      k.events,
      located.sku,
      orderId,
      userId ?? '',
      this.opts.orderRetentionSeconds,
    );
    const done = orderReply(reply, orderId, located.sku);
    if (done) return done.order;
    const code = Number(reply[0]);
    if (code === ScriptCode.SkuStateMissing) await this.rebuild.onStateMissing(located.sku);
    throw scriptError(code, reply, 'confirm');
  }

  /** Finds an order's SKU in Redis from the partition its id names. */
  private async locate(orderId: string): Promise<{ sku: string } | undefined> {
    const partition = this.keys.partitionOfOrder(orderId);
    if (partition === undefined) throw new AppError('ORDER_NOT_FOUND');
    const order = await this.readOrderRecord(partition, orderId);
    return order && { sku: order.sku };
  }

  /**
   * The order Redis holds, in either layout (see orderValue): a string, or the hash of an
   * older engine. Undefined when Redis no longer holds it.
   */
  private async readOrderRecord(
    partition: number,
    orderId: string,
  ): Promise<OrderRecord | undefined> {
    const key = this.keys.order(partition, orderId);
    const value = await this.redis.get(key).catch(async (err: unknown) => {
      if (!(err instanceof Error && err.message.startsWith('WRONGTYPE'))) throw err;
      // A key of some other type answers WRONGTYPE again: malformed, below.
      return this.redis.hgetall(key).catch((again: unknown) => {
        if (!(again instanceof Error && again.message.startsWith('WRONGTYPE'))) throw again;
        return {};
      });
    });
    if (value === null) return undefined;
    const order = parseOrder(value);
    // Never "absent": PostgreSQL would then send a live order to a rebuild that never comes.
    if (!order) throw new AppError('INTERNAL', `order ${key} is malformed; nothing was written`);
    return order;
  }

  /**
   * Redis no longer holds the order (ended long ago, or Redis lost it): PostgreSQL knows.
   * Repeating the call that ended it answers the order; anything else cannot proceed here.
   */
  private async endedOrderFromDb(
    orderId: string,
    userId: string | undefined,
    sameAs: OrderStatus,
    action: 'cancel' | 'confirm',
  ): Promise<Order> {
    const { order, updatedAt } = await this.orderRowFromDb(orderId, userId);
    if (order.status === sameAs) return order;
    // A confirmed order stays in Redis, cancellable, for the retention window; past it
    // only PostgreSQL keeps it, and it is final.
    const retained =
      order.status === 'confirmed' &&
      updatedAt.getTime() + this.opts.orderRetentionSeconds * 1000 <= Date.now();
    if (!retained && (order.status === 'reserved' || order.status === 'confirmed')) {
      // Live in PostgreSQL but missing from Redis: Redis lost it; the SKU must be rebuilt.
      await this.rebuild.onStateMissing(order.sku);
      throw skuUnavailable();
    }
    if (action === 'cancel')
      throw new AppError(
        'ORDER_NOT_CANCELLABLE',
        `An order in status ${order.status} cannot be cancelled.`,
      );
    if (order.status === 'expired') throw new AppError('ORDER_EXPIRED');
    throw new AppError(
      'ORDER_NOT_CONFIRMABLE',
      `An order in status ${order.status} cannot be confirmed.`,
    );
  }

  private async orderFromDb(orderId: string, userId: string | undefined): Promise<Order> {
    return (await this.orderRowFromDb(orderId, userId)).order;
  }

  private async orderRowFromDb(
    orderId: string,
    userId: string | undefined,
  ): Promise<{ order: Order; updatedAt: Date }> {
    const row = await this.db.order.findUnique({ where: { id: orderId } });
    if (!row || (userId !== undefined && row.userId !== userId))
      throw new AppError('ORDER_NOT_FOUND');
    return {
      order: {
        orderId: row.id,
        sku: row.skuId,
        userId: row.userId,
        quantity: row.quantity,
        status: row.status,
        createdAt: row.createdAt.toISOString(),
        expiresAt: row.expiresAt.toISOString(),
      },
      updatedAt: row.updatedAt,
    };
  }

  /** Reads an order: its owner, or anyone when userId is undefined (admin). */
  async getOrder(userId: string | undefined, orderId: string): Promise<Order> {
    const partition = this.keys.partitionOfOrder(orderId);
    if (partition === undefined) throw new AppError('ORDER_NOT_FOUND');
    const o = await this.readOrderRecord(partition, orderId);
    if (!o) return this.orderFromDb(orderId, userId);
    if (userId !== undefined && o.user !== userId) throw new AppError('ORDER_NOT_FOUND');
    return {
      orderId,
      sku: o.sku,
      userId: o.user,
      quantity: o.quantity,
      status: o.status as OrderStatus,
      createdAt: iso(o.createdAt),
      expiresAt: iso(o.expiresAt),
    };
  }
}
