// The live sale view over HTTP: the snapshot as JSON, the same snapshot once a second as
// server-sent events, and the page that shows it. See src/live/snapshot.ts for the figures.
import type { ServerResponse } from 'node:http';
import { MAX_SELECTED_SKUS, type LiveView } from '../live/snapshot.js';
import { loadLivePage, type LivePage } from '../live/page.js';
import { AppError } from '../shared/errors.js';
import { ID_PATTERN } from '../shared/keys.js';
import { sendJson, UNAVAILABLE_RETRY_AFTER_S } from './respond.js';
import type { RouteSpec } from './routes.js';

/** Open event streams per process: each costs a connection and a snapshot a second. */
export const MAX_LIVE_STREAMS = 20;
export const LIVE_INTERVAL_MS = 1000;

export interface LiveRouteDeps {
  view: LiveView;
  page?: LivePage;
  maxStreams?: number;
  intervalMs?: number;
}

export interface LiveRoutes {
  routes: RouteSpec[];
  /** Ends every open event stream (shutdown: they would hold the server open). */
  close(): void;
}

const SKU_QUERY = {
  name: 'sku',
  description: `Comma-separated SKU ids to show (at most ${MAX_SELECTED_SKUS}); default: the ${MAX_SELECTED_SKUS} most recently created.`,
};

/** ?sku=a,b: the SKUs asked for, or none (the default view). */
function selectionParam(raw: unknown): string[] {
  if (raw === undefined || raw === '') return [];
  if (typeof raw !== 'string')
    throw new AppError('VALIDATION_FAILED', 'sku must be given once, as a comma-separated list.');
  const ids = raw.split(',').map((s) => s.trim());
  if (ids.length > MAX_SELECTED_SKUS || !ids.every((id) => ID_PATTERN.test(id)))
    throw new AppError(
      'VALIDATION_FAILED',
      `sku must be at most ${MAX_SELECTED_SKUS} SKU ids ([A-Za-z0-9_-]{1,64}), comma-separated.`,
    );
  return ids;
}

const unavailable = () =>
  new AppError('SERVICE_UNAVAILABLE', 'The SKU list cannot be read now.', undefined, {
    'Retry-After': String(UNAVAILABLE_RETRY_AFTER_S),
  });

const frame = (event: string, body: unknown) =>
  `event: ${event}\ndata: ${JSON.stringify(body)}\n\n`;

export function liveRoutes({
  view,
  page = loadLivePage(),
  maxStreams = MAX_LIVE_STREAMS,
  intervalMs = LIVE_INTERVAL_MS,
}: LiveRouteDeps): LiveRoutes {
  const streams = new Set<ServerResponse>();

  const snapshotFrame = async (selection: string[]) => {
    const snap = await view.snapshot(selection);
    return snap ? frame('snapshot', snap) : frame('unavailable', unavailable().toBody());
  };

  const routes: RouteSpec[] = [
    {
      method: 'get',
      path: '/v1/admin/live',
      summary:
        'The sale now, per SKU: units left and supplied, units sold per second and reserved (summed over every API process), refusals by error code, reservations due within 60 s; the pipeline backlog and open incidents. null where a figure is unknown.',
      auth: 'admin',
      success: 200,
      errors: ['UNAUTHORIZED', 'FORBIDDEN', 'VALIDATION_FAILED'],
      query: [SKU_QUERY],
      handler: async (req, res) => {
        const snap = await view.snapshot(selectionParam(req.query.sku));
        if (!snap) throw unavailable();
        sendJson(res, 200, snap, { 'Cache-Control': 'no-store' });
      },
    },
    {
      method: 'get',
      path: '/v1/admin/live/events',
      summary: `The same snapshot as server-sent events: one \`snapshot\` event a second (\`unavailable\` while the SKU list cannot be read). At most ${maxStreams} streams per process; more answer 503.`,
      auth: 'admin',
      success: 200,
      errors: ['UNAUTHORIZED', 'FORBIDDEN', 'VALIDATION_FAILED'],
      query: [SKU_QUERY],
      produces: 'text/event-stream',
      handler: async (req, res) => {
        const selection = selectionParam(req.query.sku);
        if (streams.size >= maxStreams)
          throw new AppError(
            'SERVICE_UNAVAILABLE',
            `At most ${maxStreams} live streams may be open at once; try again shortly.`,
            undefined,
            { 'Retry-After': '5' },
          );
        streams.add(res);
        let timer: NodeJS.Timeout | undefined;
        let open = true;
        res.on('close', () => {
          open = false;
          clearTimeout(timer);
          streams.delete(res);
        });
        res.writeHead(200, {
          'Content-Type': 'text/event-stream; charset=utf-8',
          'Cache-Control': 'no-store',
          // Proxies that buffer answers (nginx) would hold the events back.
          'X-Accel-Buffering': 'no',
        });
        const tick = async () => {
          const started = Date.now();
          const next = await snapshotFrame(selection).catch(() =>
            frame('unavailable', unavailable().toBody()),
          );
          if (!open) return;
          // A reader that does not keep up misses beats instead of piling them up here.
          if (!res.writableNeedDrain) res.write(next);
          timer = setTimeout(() => void tick(), Math.max(0, intervalMs - (Date.now() - started)));
        };
        await tick();
      },
    },
    {
      method: 'get',
      path: '/admin/live',
      summary:
        'The live sale page (HTML). It holds no data: it asks for the admin token and reads /v1/admin/live/events.',
      auth: 'none',
      success: 200,
      errors: [],
      produces: 'text/html',
      handler: (_req, res) => {
        res.writeHead(200, page.headers);
        res.end(page.html);
      },
    },
  ];

  return {
    routes,
    close() {
      for (const res of streams) res.end();
      streams.clear();
    },
  };
}
