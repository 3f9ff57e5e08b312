// POST /v1/skus/{sku}/purchases: the hot path. A plain node:http handler so the server can
// dispatch it before express's router (see server.ts); express mounts the same handler.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Inventory } from '../inventory/inventory.js';
import type { Logger } from '../shared/log.js';
import { httpErrors, purchaseLatency, purchases } from '../shared/metrics.js';
import { crashPoint } from '../shared/crash.js';
import { buyerOf, type Auth, type Authenticator } from './auth.js';
import { readJson } from './body.js';
import { sendError, sendJson } from './respond.js';
import { idempotencyKey, parse, purchaseBody, skuParam } from './validators.js';

export interface PurchaseDeps {
  inventory: Inventory;
  auth: Authenticator;
  log: Logger;
  bodyLimitBytes: number;
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

export function purchaseHandler({
  inventory,
  auth,
  log,
  bodyLimitBytes,
}: PurchaseDeps): PurchaseHandler {
  return async (req, res, rawSku, checked) => {
    const end = purchaseLatency.startTimer();
    try {
      const userId =
        checked ?? buyerOf(await auth.authenticate(PURCHASE_AUTH, req.headers.authorization))!;
      const skuId = skuParam(rawSku);
      const key = idempotencyKey(req.headers['idempotency-key']);
      const { quantity } = parse(purchaseBody, await readJson(req, bodyLimitBytes));
      const { order, replayed } = await inventory.purchase(userId, skuId, quantity, key);
      crashPoint('api.after-purchase');
      sendJson(res, 201, order, replayed ? REPLAYED : undefined);
      purchases.inc({ outcome: replayed ? 'replayed' : 'created' });
    } catch (err) {
      const e = sendError(res, err, log, req.headers['x-request-id'] as string | undefined);
      purchases.inc({ outcome: e.code });
      httpErrors.inc({ code: e.code });
    } finally {
      end();
    }
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
