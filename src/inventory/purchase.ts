// The purchase path: the Idempotency-Key claim, then one atomic script that checks and
// decides (stock, per-user limit, sale window, pause), records the order and its event.
import { SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import { InventoryPart, type InventoryContext } from './types.js';
import { AppError } from '../shared/errors.js';
import { claimValue, NO_CLIENT_ADDRESS, parseClaim } from '../shared/keys.js';
import type { Rebuilder } from './rebuild.js';
import { orderReply, ScriptCode, scriptError } from './script-codes.js';
import { PurchaseBatches, type PurchaseRequest } from './purchase-batches.js';
import type { Order, PurchaseContext } from './types.js';
import { tracer, traceparentOf } from '../shared/tracing.js';

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
    context: PurchaseContext = {},
  ): Promise<{ order: Order; replayed: boolean }> {
    const k = this.keys.forSku(skuId);
    const r: PurchaseRequest = {
      k,
      skuId,
      userId,
      quantity,
      idempotencyKey,
      claimKey: this.keys.idempotencyClaim(userId, idempotencyKey),
      buyerRateKey: this.keys.rateLimit(skuId, 'b', userId),
      // Without an address the key is a placeholder, which the script never touches: no
      // client limit applies, the deployment's or the SKU's.
      clientRateKey: this.keys.rateLimit(skuId, 'c', context.clientAddress ?? NO_CLIENT_ADDRESS),
      passes: context.passes ?? '',
    };
    const t = tracer();
    if (!t) return this.decideAll(r);
    // The Redis span: its traceparent rides in the event the script writes, so the relay's
    // and the writer's spans join this trace. An unsampled span carries nothing.
    const span = t.startSpan('redis purchase', {
      kind: SpanKind.CLIENT,
      attributes: {
        'db.system.name': 'redis',
        'db.operation.name': 'EVALSHA',
        'flashsale.sku': skuId,
        'flashsale.partition': k.partition,
      },
    });
    if (span.isRecording()) r.traceparent = traceparentOf(span);
    try {
      const result = await this.decideAll(r);
      span.setAttribute('flashsale.order_id', result.order.orderId);
      span.setAttribute('flashsale.replayed', result.replayed);
      return result;
    } catch (err) {
      endWithError(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  private async decideAll(r: PurchaseRequest): Promise<{ order: Order; replayed: boolean }> {
    const { k, skuId, quantity } = r;
    let orderId: string;
    let reply: unknown[];

    if (this.soldOut.has(skuId)) {
      // Sold out: skip the script and every write. Only a key used before can still
      // succeed (as a replay of its original order), so read its claim and nothing else.
      const claim = await this.redis.get(r.claimKey);
      if (claim === null) throw new AppError('SOLD_OUT', undefined, { available: 0 });
      orderId = this.matchClaim(claim, skuId, quantity);
      reply = await this.batches.decide(r, orderId, false);
    } else if (this.opts.claimInScript) {
      // One round trip: the script claims the key, or continues with the order id of the
      // key's first use, and says which order id it used.
      const fresh = this.keys.orderIdFor(k.partition);
      reply = await this.batches.decide(r, fresh, true);
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
      reply = await this.batches.decide(r, orderId, false);
    }

    if (Number(reply[0]) === ScriptCode.ClaimRestored) {
      // A rebuild restored this key's claim while the request held a placeholder: the order
      // the key made before Redis lost its data answers (the script will not name another).
      orderId = String(reply[1]);
      r.limitsTaken = true; // the first call counted this request against the limits
      reply = await this.batches.decide(r, orderId, false);
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

  /** The purchase script, through which every purchase of this instance is decided. */
  private readonly batches = new PurchaseBatches(this.redis, this.opts);

  private matchClaim(value: string, skuId: string, quantity: number): string {
    const claim = parseClaim(value);
    if (!claim || claim.sku !== skuId || claim.quantity !== quantity) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED');
    }
    return claim.orderId;
  }
}

/** A refusal is an answer, not a failure of the call: only 5xx-class errors mark the span. */
function endWithError(span: Span, err: unknown): void {
  const code = err instanceof AppError ? err.code : 'INTERNAL';
  span.setAttribute('flashsale.error_code', code);
  if (!(err instanceof AppError) || err.status >= 500)
    span.setStatus({ code: SpanStatusCode.ERROR, message: code });
}
