// The error list, the OpenAPI document, the routes and the README stay in step.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ERROR_CODES } from '../../src/errors.js';
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

  it('documents every route the server has, and the server has every documented route', async () => {
    const documented = Object.entries(spec.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    const routed = api.engine.routes.map((r) => `${r.method.toUpperCase()} ${r.path}`);
    assert.deepEqual(documented.sort(), routed.sort());
    for (const r of api.engine.routes) {
      const path = r.path
        .replace('{sku}', 'spec-check')
        .replace('{id}', '0190a000-0000-7000-8000-000000000000');
      const res = await fetch(`${api.url}${path}`, { method: r.method.toUpperCase() });
      const body = (await res.json()) as { error?: { code: string } };
      assert.ok(
        !['NOT_FOUND', 'METHOD_NOT_ALLOWED'].includes(body.error?.code ?? ''),
        `${r.method} ${r.path} is served`,
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
