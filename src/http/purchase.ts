// POST /v1/skus/{sku}/purchases: the hot path. A plain node:http handler so the server can
// dispatch it before express's router (see server.ts); express mounts the same handler.
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { Inventory } from '../inventory/inventory.js';
import type { Logger } from '../shared/log.js';
import { httpErrors, purchaseLatency, purchases, unitsReserved } from '../shared/metrics.js';
import { crashPoint } from '../shared/crash.js';
import { tracer } from '../shared/tracing.js';
import { buyerOf, type Auth, type Authenticator } from './auth.js';
import { readJson } from './body.js';
import { clientAddress } from './client-address.js';
import type { PassTokens } from '../admission/tokens.js';
import { sendError, sendJson } from './respond.js';
import { idempotencyKey, parse, purchaseBody, skuParam } from './validators.js';

export interface PurchaseDeps {
  inventory: Inventory;
  auth: Authenticator;
  log: Logger;
  bodyLimitBytes: number;
  /** Verifies the Admission-Token and Qualification-Token a purchase may carry. */
  passes: PassTokens;
  /** Proxies in front whose X-Forwarded-For entries are believed (the client address). */
  trustedProxyHops: number;
}

/** Who may buy: the purchase route's table entry and the fast path both use this. */
export const PURCHASE_AUTH: Auth = 'buyer';

/** `userId` when the app already checked the credentials; otherwise the handler does. */
export type PurchaseHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  rawSku: string | undefined,
  userId?: string,
) => Promise<void>;

const REPLAYED = { 'Idempotent-Replayed': 'true' };

/** Answers that only a SKU's own script gives: the SKU exists. */
const SKU_REFUSALS = new Set<string>([
  'SOLD_OUT',
  'LIMIT_EXCEEDED',
  'SALE_NOT_ACTIVE',
  'IDEMPOTENCY_KEY_REUSED',
  'SKU_UNAVAILABLE',
  'NOT_ADMITTED',
  'NOT_QUALIFIED',
  'RATE_LIMITED',
]);

/**
 * The passes a purchase carries, verified: 'a' for a valid Admission-Token, 'q' for a
 * valid Qualification-Token, both for this buyer and SKU. Nothing to do without headers;
 * whether the SKU needs them is the purchase script's decision.
 */
function verifiedPasses(
  req: IncomingMessage,
  tokens: PassTokens,
  userId: string,
  skuId: string,
): string {
  const admission = req.headers['admission-token'];
  const qualification = req.headers['qualification-token'];
  if (admission === undefined && qualification === undefined) return '';
  const admitted = typeof admission === 'string' && tokens.admits(admission, userId, skuId);
  const qualified =
    typeof qualification === 'string' && tokens.qualifies(qualification, userId, skuId);
  return (admitted ? 'a' : '') + (qualified ? 'q' : '');
}

export function purchaseHandler({
  inventory,
  auth,
  log,
  bodyLimitBytes,
  passes: tokens,
  trustedProxyHops,
}: PurchaseDeps): PurchaseHandler {
  const handle: PurchaseHandler = async (req, res, rawSku, checked) => {
    const end = purchaseLatency.startTimer();
    // The SKU label only once the SKU is known to exist (an answer from its script): a
    // label per id anyone can type would let any client grow the metrics without bound.
    let skuLabel = '';
    try {
      const userId =
        checked ?? buyerOf(auth.authenticate(PURCHASE_AUTH, req.headers.authorization))!;
      const skuId = skuParam(rawSku);
      const key = idempotencyKey(req.headers['idempotency-key']);
      const { quantity } = parse(purchaseBody, await readJson(req, bodyLimitBytes));
      const context = {
        passes: verifiedPasses(req, tokens, userId, skuId),
        // Always: a SKU may limit client addresses where the deployment does not.
        clientAddress: clientAddress(req, trustedProxyHops),
      };
      skuLabel = skuId;
      const { order, replayed } = await inventory.purchase(userId, skuId, quantity, key, context);
      crashPoint('api.after-purchase');
      sendJson(res, 201, order, replayed ? REPLAYED : undefined);
      purchases.inc({ outcome: replayed ? 'replayed' : 'created', sku: skuId });
      if (!replayed) unitsReserved.inc({ sku: skuId }, order.quantity);
    } catch (err) {
      const e = sendError(res, err, log, req.headers['x-request-id'] as string | undefined);
      purchases.inc({ outcome: e.code, sku: SKU_REFUSALS.has(e.code) ? skuLabel : '' });
      httpErrors.inc({ code: e.code });
    } finally {
      end();
    }
  };
  return (req, res, rawSku, checked) => {
    const t = tracer();
    if (!t) return handle(req, res, rawSku, checked);
    // The server span, continuing the caller's traceparent when it sends one.
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const span = t.startSpan(
      'POST /v1/skus/{sku}/purchases',
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': 'POST',
          'http.route': '/v1/skus/{sku}/purchases',
          'url.path': req.url?.split('?')[0] ?? '',
        },
      },
      parent,
    );
    return context
      .with(trace.setSpan(parent, span), () => handle(req, res, rawSku, checked))
      .finally(() => {
        span.setAttribute('http.response.status_code', res.statusCode);
        if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      });
  };
}

const PURCHASE_PATH = /^\/v1\/skus\/([^/?#]*)\/purchases\/?(?:\?.*)?$/;

/** The SKU segment of a purchase URL (percent-decoded), or undefined for other routes. */
export function matchPurchase(
  method: string | undefined,
  url: string | undefined,
): string | undefined {
  if (method !== 'POST' || !url) return undefined;
  const m = PURCHASE_PATH.exec(url);
  if (!m) return undefined;
  try {
    return decodeURIComponent(m[1] ?? '');
  } catch {
    return '\u0000'; // undecodable: let the validator refuse it
  }
}
