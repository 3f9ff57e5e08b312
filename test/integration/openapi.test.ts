// The error list, the OpenAPI document, the routes and the README stay in step.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ERROR_CODES } from '../../src/shared/errors.js';
import { COMMON_ERRORS } from '../../src/http/routes.js';
import { startApi, type RunningApi } from '../helpers.js';

describe('OpenAPI document and error list', () => {
  let api: RunningApi;
  let spec: {
    paths: Record<
      string,
      Record<string, { responses: Record<string, { 'x-error-codes'?: string[] }> }>
    >;
    components: { 'x-error-codes': Record<string, { status: number; retryable: boolean }> };
  };
  before(async () => {
    api = await startApi();
    spec = (await (await fetch(`${api.url}/openapi.json`)).json()) as typeof spec;
  });
  after(() => api.stop());

  it('documents the REST contract of design.md, and serves every route it documents', async () => {
    // Written out by hand from the contract: the document is generated from the route
    // table, so only an independent list can catch a route that went missing or moved.
    const contract = [
      'POST /v1/skus/{sku}/purchases',
      'GET /v1/skus/{sku}',
      'GET /v1/orders/{id}',
      'POST /v1/orders/{id}/cancel',
      'POST /v1/orders/{id}/confirm',
      'POST /v1/admin/skus',
      'POST /v1/admin/skus/{sku}/restock',
      'POST /v1/admin/skus/{sku}/pause',
      'POST /v1/admin/skus/{sku}/resume',
      'POST /v1/admin/skus/{sku}/repair',
      'GET /v1/admin/skus/{sku}/reconciliation',
      'POST /v1/admin/reconcile',
      'GET /v1/admin/alerts',
      'GET /v1/admin/live',
      'GET /v1/admin/live/events',
      'GET /admin/live',
      'POST /v1/skus/{sku}/queue',
      'GET /v1/skus/{sku}/queue/{ticket}',
      'GET /v1/admin/skus/{sku}/admission',
      'PUT /v1/admin/skus/{sku}/admission',
    ];
    const documented = Object.entries(spec.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    assert.deepEqual(documented.sort(), contract.sort());
    for (const entry of contract) {
      const [method, template] = entry.split(' ') as [string, string];
      const path = template
        .replace('{sku}', 'spec-check')
        .replace('{id}', '0190a000-0000-7000-8000-000000000000');
      const res = await fetch(`${api.url}${path}`, { method });
      // The live page is HTML; everything else answers JSON, errors included.
      const body = (
        res.headers.get('content-type')?.startsWith('application/json') ? await res.json() : {}
      ) as { error?: { code: string } };
      assert.ok(
        !['NOT_FOUND', 'METHOD_NOT_ALLOWED'].includes(body.error?.code ?? ''),
        `${entry} is served`,
      );
    }
  });

  it('lists every error code with its status and retryable flag', () => {
    assert.deepEqual(
      Object.keys(spec.components['x-error-codes']).sort(),
      Object.keys(ERROR_CODES).sort(),
    );
    for (const [code, e] of Object.entries(ERROR_CODES)) {
      assert.equal(spec.components['x-error-codes'][code]?.status, e.status, code);
      assert.equal(spec.components['x-error-codes'][code]?.retryable, e.retryable, code);
    }
  });

  it('every error code is answered by some route, under its status', () => {
    const used = new Set<string>(COMMON_ERRORS);
    for (const ops of Object.values(spec.paths)) {
      for (const op of Object.values(ops)) {
        for (const [status, response] of Object.entries(op.responses)) {
          for (const code of response['x-error-codes'] ?? []) {
            assert.equal(
              String(ERROR_CODES[code as keyof typeof ERROR_CODES].status),
              status,
              code,
            );
            used.add(code);
          }
        }
      }
    }
    const unused = Object.keys(ERROR_CODES).filter((c) => !used.has(c));
    assert.deepEqual(unused, []);
  });

  it('the README error table matches the list', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const rows = readme.split('\n').map((l) =>
      l
        .split('|')
        .map((c) => c.trim())
        .slice(1, 4)
        .join(' '),
    );
    for (const [code, e] of Object.entries(ERROR_CODES)) {
      const cells = `\`${code}\` ${e.status} ${e.retryable ? 'yes' : 'no'}`;
      assert.ok(rows.includes(cells), `README has no row "${cells}"`);
    }
  });
});
