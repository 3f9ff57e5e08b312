// The purchase path: the Idempotency-Key claim, then one atomic script that checks and
// decides (stock, per-user limit, sale window, pause), records the order and its event.
import { InventoryPart, type InventoryContext } from './types.js';
import { AppError } from '../shared/errors.js';
import { claimValue, parseClaim, type SkuKeys } from '../shared/keys.js';
import type { Rebuilder } from './rebuild.js';
import { orderReply, ScriptCode, scriptError } from './script-codes.js';
import type { Order } from './types.js';

export class Purchases extends InventoryPart {
  constructor(
    ctx: InventoryContext,
    private readonly rebuild: Rebuilder,
  ) {
    super(ctx);
  }

  async purchase(
    userId: string,
    skuId: string,
    quantity: number,
    idempotencyKey: string,
  ): Promise<{ order: Order; replayed: boolean }> {
    const k = this.keys.forSku(skuId);
    const r: Request = {
      k,
      skuId,
      userId,
      quantity,
      idempotencyKey,
      claimKey: this.keys.idempotencyClaim(userId, idempotencyKey),
    };
    let orderId: string;
    let reply: unknown[];

    if (this.soldOut.has(skuId)) {
      // Sold out: skip the script and every write. Only a key used before can still
      // succeed (as a replay of its original order), so read its claim and nothing else.
      const claim = await this.redis.get(r.claimKey);
      if (claim === null) throw new AppError('SOLD_OUT', undefined, { available: 0 });
      orderId = this.matchClaim(claim, skuId, quantity);
      reply = await this.decide(r, orderId);
    } else if (this.opts.claimInScript) {
      // One round trip: the script claims the key, or continues with the order id of the
      // key's first use, and says which order id it used.
      const fresh = this.keys.orderIdFor(k.partition);
      reply = await this.decide(r, fresh, true);
      orderId = typeof reply[7] === 'string' ? reply[7] : fresh;
    } else {
      const fresh = this.keys.orderIdFor(k.partition);
      const claim = await this.redis.set(
        r.claimKey,
        claimValue({ sku: skuId, quantity, orderId: fresh }),
        'EX',
        this.opts.idempotencyTtlSeconds,
        'NX',
        'GET',
      );
      orderId = claim === null ? fresh : this.matchClaim(claim, skuId, quantity);
      reply = await this.decide(r, orderId);
    }

    if (Number(reply[0]) === ScriptCode.ClaimRestored) {
      // A rebuild restored this key's claim while the request held a placeholder: the order
      // the key made before Redis lost its data answers (the script will not name another).
      orderId = String(reply[1]);
      reply = await this.decide(r, orderId);
    }
    const done = orderReply(reply, orderId, skuId);
    if (done) {
      if (done.available === 0) this.soldOut.mark(skuId);
      return { order: done.order, replayed: done.code === ScriptCode.Unchanged };
    }
    const code = Number(reply[0]);
    if (code === ScriptCode.SoldOut && Number(reply[1]) === 0) this.soldOut.mark(skuId);
    if (code === ScriptCode.SkuStateMissing) return this.rebuild.stateMissing(skuId);
    throw scriptError(code, reply);
  }

  /**
   * The purchase script for one order id: purchase-6.lua when the key is claimed already,
   * claimAndPurchase-7.lua (claimHere) to claim it for this order id in the same call.
   */
  private decide(r: Request, orderId: string, claimHere = false): Promise<unknown[]> {
    const { k } = r;
    const keys = [k.sku, k.users, k.order(orderId), k.expiries, k.events, k.restoredClaims];
    const argv = [r.skuId, r.userId, r.quantity, orderId, r.idempotencyKey, r.claimKey];
    if (!claimHere) return this.redis.fsPurchase(...keys, ...argv);
    const claim = claimValue({ sku: r.skuId, quantity: r.quantity, orderId });
    return this.redis.fsClaimAndPurchase(
      ...keys,
      r.claimKey,
      ...argv,
      this.opts.idempotencyTtlSeconds,
      claim,
    );
  }

  private matchClaim(value: string, skuId: string, quantity: number): string {
    const claim = parseClaim(value);
    if (!claim || claim.sku !== skuId || claim.quantity !== quantity) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED');
    }
    return claim.orderId;
  }
}

/** One purchase request, as the scripts take it. */
interface Request {
  k: SkuKeys;
  skuId: string;
  userId: string;
  quantity: number;
  idempotencyKey: string;
  claimKey: string;
}
