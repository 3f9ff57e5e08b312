// The waiting room's routes: buyers join and poll; the admin changes a SKU's admission
// settings (waiting room, qualification, its own rate limit) after its creation.
import type { WaitingRoom } from '../admission/waiting-room.js';
import type { Inventory } from '../inventory/inventory.js';
import { admissionSettings } from '../inventory/admission-fields.js';
import { AppError, type ErrorCode } from '../shared/errors.js';
import { queueJoins } from '../shared/metrics.js';
import { buyerOf } from './auth.js';
import { readJson } from './body.js';
import { clientAddress } from './client-address.js';
import { sendJson } from './respond.js';
import type { RouteSpec } from './routes.js';
import { admissionBody, parse, skuParam } from './validators.js';

export interface QueueRouteDeps {
  waitingRoom: WaitingRoom;
  inventory: Inventory;
  adminBodyLimitBytes: number;
  /** Proxies in front whose X-Forwarded-For entries are believed (the client address). */
  trustedProxyHops: number;
}

const AUTH_ERRORS: ErrorCode[] = ['UNAUTHORIZED', 'FORBIDDEN'];

/** Answers only a SKU's own script gives: the SKU exists, so it may name a metric label. */
const SKU_OUTCOMES = new Set<string>([
  'QUEUE_NOT_ENABLED',
  'QUEUE_CLOSED',
  'NOT_QUALIFIED',
  'RATE_LIMITED',
  'SKU_UNAVAILABLE',
]);

export function queueRoutes({
  waitingRoom,
  inventory,
  adminBodyLimitBytes,
  trustedProxyHops,
}: QueueRouteDeps): RouteSpec[] {
  // Always: a SKU may limit client addresses where the deployment does not.
  const addressOf = (req: Parameters<typeof clientAddress>[0]) =>
    clientAddress(req, trustedProxyHops);
  return [
    {
      method: 'post',
      path: '/v1/skus/{sku}/queue',
      summary:
        "Join a SKU's waiting room: 202 with a ticket, its place and an estimated wait. One ticket per buyer: joining again answers the same one (a new one once its admission lapsed). Before the sale opens places are drawn at random; after, they go in arrival order.",
      auth: 'buyer',
      success: 202,
      errors: [
        ...AUTH_ERRORS,
        'VALIDATION_FAILED',
        'SKU_NOT_FOUND',
        'SKU_UNAVAILABLE',
        'QUEUE_NOT_ENABLED',
        'QUEUE_CLOSED',
        'NOT_QUALIFIED',
        'RATE_LIMITED',
      ],
      headers: [
        {
          name: 'Qualification-Token',
          required: false,
          description:
            "The seller's signed pass for this buyer and SKU; required when the SKU requires qualification.",
        },
      ],
      handler: async (req, res, principal) => {
        let skuLabel = '';
        try {
          const skuId = skuParam(req.params.sku as string | undefined);
          skuLabel = skuId;
          const token = req.headers['qualification-token'];
          const { view, created } = await waitingRoom.join(
            buyerOf(principal)!,
            skuId,
            typeof token === 'string' ? token : undefined,
            addressOf(req),
          );
          sendJson(res, 202, view);
          queueJoins.inc({ outcome: created ? 'joined' : 'rejoined', sku: skuId });
        } catch (err) {
          const code = err instanceof AppError ? err.code : 'INTERNAL';
          queueJoins.inc({ outcome: code, sku: SKU_OUTCOMES.has(code) ? skuLabel : '' });
          throw err;
        }
      },
    },
    {
      method: 'get',
      path: '/v1/skus/{sku}/queue/{ticket}',
      summary:
        'Where a waiting-room ticket stands (its buyer only): waiting, admitted (with the Admission-Token a purchase sends, and until when), closed (nothing left to sell now, or the sale ended) or expired. After Redis lost its data, the ticket as joining answered it (signed) takes its place in line back.',
      auth: 'buyer',
      success: 200,
      errors: [
        ...AUTH_ERRORS,
        'VALIDATION_FAILED',
        'SKU_NOT_FOUND',
        'SKU_UNAVAILABLE',
        'QUEUE_NOT_ENABLED',
        'TICKET_NOT_FOUND',
        'RATE_LIMITED',
      ],
      handler: async (req, res, principal) => {
        const skuId = skuParam(req.params.sku as string | undefined);
        const view = await waitingRoom.poll(
          buyerOf(principal)!,
          skuId,
          String(req.params.ticket ?? ''),
          addressOf(req),
        );
        sendJson(res, 200, view);
      },
    },
    {
      method: 'get',
      path: '/v1/admin/skus/{sku}/admission',
      summary:
        "A SKU's admission settings {sku, waitingRoom, qualificationRequired, rateLimit} as PostgreSQL, their durable record, holds them (null: off, or the deployment's limits). A change whose PUT answered 503 is recorded here but in force only once retried, or after the SKU's next rebuild.",
      auth: 'admin',
      success: 200,
      errors: [...AUTH_ERRORS, 'VALIDATION_FAILED', 'SKU_NOT_FOUND'],
      handler: async (req, res) => {
        const skuId = skuParam(req.params.sku as string | undefined);
        sendJson(res, 200, { sku: skuId, ...(await inventory.getAdmission(skuId)) });
      },
    },
    {
      method: 'put',
      path: '/v1/admin/skus/{sku}/admission',
      summary:
        "Replace a SKU's admission settings {waitingRoom?, qualificationRequired?, rateLimit?} (absent: off, not required, the deployment's limits). PostgreSQL first, then the SKU's Redis state, so every API instance applies them from the next request. Idempotent.",
      auth: 'admin',
      success: 200,
      errors: [
        ...AUTH_ERRORS,
        'VALIDATION_FAILED',
        'MALFORMED_JSON',
        'PAYLOAD_TOO_LARGE',
        'UNSUPPORTED_MEDIA_TYPE',
        'SKU_NOT_FOUND',
        'SKU_UNAVAILABLE',
      ],
      body: admissionBody,
      handler: async (req, res) => {
        const skuId = skuParam(req.params.sku as string | undefined);
        const b = parse(admissionBody, await readJson(req, adminBodyLimitBytes));
        const settings = await inventory.setAdmission(skuId, admissionSettings(b));
        sendJson(res, 200, { sku: skuId, ...settings });
      },
    },
  ];
}
