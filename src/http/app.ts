// The HTTP surface: express 5 for every route, plus a node:http pre-dispatch of the
// purchase route (the hot path) that skips express's router and request decoration.
import { createServer, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { AppError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { httpErrors, registry } from '../shared/metrics.js';
import type { Authenticator } from './auth.js';
import type { ReadinessProbe } from './health.js';
import { buildOpenApi } from './openapi.js';
import { matchPurchase, type PurchaseHandler } from './purchase.js';
import { sendError, sendJson } from './respond.js';
import { expressPath, notFound, type RouteSpec } from './routes.js';

export interface AppDeps {
  routes: RouteSpec[];
  auth: Authenticator;
  readiness: ReadinessProbe;
  log: Logger;
  version: string;
}

export function createApp({ routes, auth, readiness, log, version }: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');

  app.use((req, res, next) => {
    const id = req.headers['x-request-id'];
    const requestId =
      typeof id === 'string' && /^[A-Za-z0-9._-]{1,128}$/.test(id) ? id : randomUUID();
    res.setHeader('X-Request-Id', requestId);
    res.locals.requestId = requestId;
    log.debug({ requestId, method: req.method, url: req.url }, 'request');
    next();
  });

  app.get('/healthz', (_req, res) => sendJson(res, 200, { status: 'ok' }));
  app.get('/readyz', async (_req, res) => {
    const { ready, checks } = await readiness.run();
    sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'unavailable', checks });
  });
  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', registry.contentType);
    res.end(await registry.metrics());
  });
  const spec = buildOpenApi(routes, version);
  app.get('/openapi.json', (_req, res) => sendJson(res, 200, spec));

  // Every route's credentials are checked here, from its table entry, before its handler.
  for (const r of routes)
    app[r.method](expressPath(r.path), async (req, res) =>
      r.handler(req, res, auth.authenticate(r.auth, req.headers.authorization)),
    );

  // A known path with another method: 405 naming the allowed ones.
  const methodsByPath = new Map<string, string[]>();
  for (const r of routes)
    methodsByPath.set(expressPath(r.path), [
      ...(methodsByPath.get(expressPath(r.path)) ?? []),
      r.method.toUpperCase(),
    ]);
  for (const [path, methods] of methodsByPath) {
    app.all(path, (_req, res) => {
      res.setHeader('Allow', methods.join(', '));
      throw new AppError('METHOD_NOT_ALLOWED');
    });
  }
  app.use(() => notFound());

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = isClientError(err)
      ? new AppError('VALIDATION_FAILED', 'The request could not be read.')
      : err;
    const sent = sendError(res, e, log, res.locals.requestId as string | undefined);
    httpErrors.inc({ code: sent.code });
    // SERVICE_UNAVAILABLE is logged once per outage window by sendError.
    if (sent.status >= 500 && sent.code !== 'SERVICE_UNAVAILABLE')
      log.warn({ requestId: res.locals.requestId, url: req.url, code: sent.code }, 'server error');
  });
  return app;
}

/** Errors express raises itself for unreadable requests (for example a bad % escape). */
function isClientError(err: unknown): boolean {
  if (err instanceof AppError || typeof err !== 'object' || err === null) return false;
  const status = (err as { status?: unknown }).status;
  return typeof status === 'number' && status >= 400 && status < 500;
}

export function createHttpServer(
  app: express.Express,
  purchase: PurchaseHandler | undefined,
): Server {
  const server = createServer((req, res) => {
    const sku = purchase && matchPurchase(req.method, req.url);
    if (purchase && sku !== undefined) {
      void purchase(req, res, sku);
      return;
    }
    app(req, res);
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.requestTimeout = 30_000;
  return server;
}
