// The OpenAPI 3.1 document, built from the route table and the error list.
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../shared/errors.js';
import { COMMON_ERRORS, type RouteSpec } from './routes.js';

const orderSchema = {
  type: 'object',
  required: ['orderId', 'sku', 'userId', 'quantity', 'status', 'createdAt', 'expiresAt'],
  properties: {
    orderId: { type: 'string', format: 'uuid' },
    sku: { type: 'string' },
    userId: { type: 'string' },
    quantity: { type: 'integer', minimum: 1 },
    status: { type: 'string', enum: ['reserved', 'confirmed', 'cancelled', 'expired'] },
    createdAt: { type: 'string', format: 'date-time' },
    expiresAt: { type: 'string', format: 'date-time' },
  },
};

export function buildOpenApi(routes: RouteSpec[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const params = [...r.path.matchAll(/\{([A-Za-z]+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    const headers = (r.headers ?? []).map((h) => ({
      name: h.name,
      in: 'header',
      required: h.required,
      description: h.description,
      schema: { type: 'string' },
    }));
    const query = (r.query ?? []).map((q) => ({
      name: q.name,
      in: 'query',
      required: false,
      description: q.description,
      schema: { type: 'string' },
    }));
    const codes = [...new Set<ErrorCode>([...r.errors, ...COMMON_ERRORS])];
    const byStatus = new Map<number, ErrorCode[]>();
    for (const c of codes)
      byStatus.set(ERROR_CODES[c].status, [...(byStatus.get(ERROR_CODES[c].status) ?? []), c]);
    const responses: Record<string, unknown> = {
      [String(r.success)]: {
        description: 'Success',
        content: {
          [r.produces ?? 'application/json']: {
            schema: { type: r.produces ? 'string' : 'object' },
          },
        },
      },
    };
    for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
      responses[String(status)] = {
        description: list.join(', '),
        'x-error-codes': list,
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
    paths[r.path] ??= {};
    paths[r.path]![r.method] = {
      summary: r.summary,
      security:
        r.auth === 'none'
          ? []
          : r.auth === 'admin'
            ? [{ adminToken: [] }]
            : r.auth === 'buyer'
              ? [{ buyerJwt: [] }]
              : [{ buyerJwt: [] }, { adminToken: [] }],
      parameters: [...params, ...query, ...headers],
      ...(r.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: z.toJSONSchema(r.body, { io: 'input' }) } },
            },
          }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Flash-sale inventory engine', version },
    paths,
    components: {
      securitySchemes: {
        buyerJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT (HS256, user id in sub)' },
        adminToken: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' },
      },
      schemas: {
        Order: orderSchema,
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message', 'retryable'],
              properties: {
                code: { type: 'string', enum: Object.keys(ERROR_CODES) },
                message: { type: 'string' },
                retryable: { type: 'boolean' },
                details: { type: 'object' },
              },
            },
          },
        },
      },
      'x-error-codes': Object.fromEntries(
        Object.entries(ERROR_CODES).map(([code, e]) => [
          code,
          { status: e.status, retryable: e.retryable, message: e.message },
        ]),
      ),
    },
  };
}
