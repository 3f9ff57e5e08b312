// Bad input: every case answers its 4xx code in the error shape and leaves every Redis
// key of the SKU (and the user's idempotency claims) byte-for-byte unchanged.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  createSku,
  snapshot,
  startApi,
  testConfig,
  token,
  uid,
  type RunningApi,
} from '../helpers.js';

interface Case {
  name: string;
  method?: string;
  path?: (sku: string) => string;
  headers?: Record<string, string | undefined>;
  body?: string;
  status: number;
  code: string;
}

describe('bad input', () => {
  let api: RunningApi;
  let sku: string;
  let jwt: string;
  let orderId: string;
  const user = uid('badin').replace(/-/g, '_');
  const cfg = testConfig();

  before(async () => {
    api = await startApi();
    sku = uid('bad');
    await createSku(api, { sku, stock: 10, perUserLimit: 2 });
    jwt = await token(user);
    const res = await fetch(`${api.url}/v1/skus/${sku}/purchases`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${jwt}`,
        'idempotency-key': uid('ok'),
        'content-type': 'application/json',
      },
      body: '{"quantity":1}',
    });
    orderId = ((await res.json()) as { orderId: string }).orderId;
  });
  after(() => api.stop());

  const good = () => ({
    authorization: `Bearer ${jwt}`,
    'idempotency-key': uid('key'),
    'content-type': 'application/json',
  });
  const purchase = (s: string) => `/v1/skus/${s}/purchases`;

  const cases = (): Case[] => [
    { name: 'quantity 0', body: '{"quantity":0}', status: 400, code: 'VALIDATION_FAILED' },
    { name: 'quantity -1', body: '{"quantity":-1}', status: 400, code: 'VALIDATION_FAILED' },
    { name: 'quantity 1.5', body: '{"quantity":1.5}', status: 400, code: 'VALIDATION_FAILED' },
    { name: 'quantity "1"', body: '{"quantity":"1"}', status: 400, code: 'VALIDATION_FAILED' },
    { name: 'quantity 1e309', body: '{"quantity":1e309}', status: 400, code: 'VALIDATION_FAILED' },
    {
      name: 'quantity above the API maximum',
      body: '{"quantity":1001}',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'quantity above the SKU limit',
      body: '{"quantity":3}',
      status: 409,
      code: 'LIMIT_EXCEEDED',
    },
    { name: 'quantity missing', body: '{}', status: 400, code: 'VALIDATION_FAILED' },
    {
      name: 'unknown field',
      body: '{"quantity":1,"price":0}',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    { name: 'body is an array', body: '[1]', status: 400, code: 'VALIDATION_FAILED' },
    { name: 'body is null', body: 'null', status: 400, code: 'VALIDATION_FAILED' },
    { name: 'malformed JSON', body: '{"quantity":', status: 400, code: 'MALFORMED_JSON' },
    {
      name: 'SKU with braces',
      path: (s) => purchase(`${s}%7Bp01%7D`),
      body: '{"quantity":1}',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'SKU 10 KB long',
      path: () => purchase('a'.repeat(10240)),
      body: '{"quantity":1}',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'SKU in unicode',
      path: () => purchase(encodeURIComponent('héllo-wörld')),
      body: '{"quantity":1}',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'SKU with a bad % escape',
      path: () => purchase('%E0%A4%A'),
      body: '{"quantity":1}',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'SKU with a colon',
      path: (s) => purchase(`${s}:x`),
      body: '{"quantity":1}',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'content type text/plain',
      headers: { 'content-type': 'text/plain' },
      body: '{"quantity":1}',
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: 'no content type',
      headers: { 'content-type': undefined },
      body: '{"quantity":1}',
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: 'body over the limit',
      body: JSON.stringify({ quantity: 1, pad: 'x'.repeat(4096) }),
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    },
    {
      name: 'missing token',
      headers: { authorization: undefined },
      body: '{"quantity":1}',
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'Basic instead of Bearer',
      headers: { authorization: 'Basic YTpi' },
      body: '{"quantity":1}',
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'malformed token',
      headers: { authorization: 'Bearer not.a.jwt' },
      body: '{"quantity":1}',
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'expired token',
      headers: { authorization: 'EXPIRED' },
      body: '{"quantity":1}',
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'token signed with another secret',
      headers: { authorization: 'WRONGKEY' },
      body: '{"quantity":1}',
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'token with another algorithm',
      headers: { authorization: 'HS384' },
      body: '{"quantity":1}',
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'token subject with braces',
      headers: { authorization: 'BADSUB' },
      body: '{"quantity":1}',
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'admin token on a buyer route',
      headers: { authorization: `Bearer ${cfg.ADMIN_TOKEN}` },
      body: '{"quantity":1}',
      status: 403,
      code: 'FORBIDDEN',
    },
    {
      name: 'missing Idempotency-Key',
      headers: { 'idempotency-key': undefined },
      body: '{"quantity":1}',
      status: 400,
      code: 'IDEMPOTENCY_KEY_REQUIRED',
    },
    {
      name: 'over-long Idempotency-Key',
      headers: { 'idempotency-key': 'k'.repeat(129) },
      body: '{"quantity":1}',
      status: 400,
      code: 'IDEMPOTENCY_KEY_INVALID',
    },
    {
      name: 'Idempotency-Key with braces',
      headers: { 'idempotency-key': 'a{b}' },
      body: '{"quantity":1}',
      status: 400,
      code: 'IDEMPOTENCY_KEY_INVALID',
    },
    {
      name: 'buyer token on admin create',
      path: () => '/v1/admin/skus',
      body: JSON.stringify({ sku: uid('x'), name: 'x', stock: 1, perUserLimit: 1 }),
      status: 403,
      code: 'FORBIDDEN',
    },
    {
      name: 'buyer token on admin restock',
      path: (s) => `/v1/admin/skus/${s}/restock`,
      body: '{"quantity":5,"reason":"x"}',
      status: 403,
      code: 'FORBIDDEN',
    },
    {
      name: 'wrong admin token on restock',
      path: (s) => `/v1/admin/skus/${s}/restock`,
      headers: { authorization: 'Bearer wrong-admin-token-1234' },
      body: '{"quantity":5,"reason":"x"}',
      status: 401,
      code: 'UNAUTHORIZED',
    },
    {
      name: 'restock quantity 0',
      path: (s) => `/v1/admin/skus/${s}/restock`,
      headers: { authorization: `Bearer ${cfg.ADMIN_TOKEN}` },
      body: '{"quantity":0,"reason":"x"}',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'restock without reason',
      path: (s) => `/v1/admin/skus/${s}/restock`,
      headers: { authorization: `Bearer ${cfg.ADMIN_TOKEN}` },
      body: '{"quantity":2}',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'create with the SKU id in braces',
      path: () => '/v1/admin/skus',
      headers: { authorization: `Bearer ${cfg.ADMIN_TOKEN}` },
      body: '{"sku":"a{b}","name":"x","stock":1,"perUserLimit":1}',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'create that exists already',
      path: (s) => '/v1/admin/skus?' + s,
      headers: { authorization: `Bearer ${cfg.ADMIN_TOKEN}` },
      body: 'SAME_SKU',
      status: 409,
      code: 'SKU_EXISTS',
    },
    {
      name: 'cancel with a malformed order id',
      path: () => '/v1/orders/123/cancel',
      body: '',
      status: 400,
      code: 'VALIDATION_FAILED',
    },
    {
      name: 'cancel of an order that does not exist',
      path: () => `/v1/orders/${orderId.slice(0, -12)}000000000000/cancel`,
      body: '',
      status: 404,
      code: 'ORDER_NOT_FOUND',
    },
    {
      name: "another user's order",
      method: 'GET',
      path: () => `/v1/orders/${orderId}`,
      headers: { authorization: 'OTHER' },
      status: 404,
      code: 'ORDER_NOT_FOUND',
    },
    {
      name: 'unknown route',
      path: () => '/v1/nothing-here',
      body: '{}',
      status: 404,
      code: 'NOT_FOUND',
    },
    {
      name: 'wrong method',
      method: 'DELETE',
      path: (s) => `/v1/skus/${s}`,
      status: 405,
      code: 'METHOD_NOT_ALLOWED',
    },
  ];

  it('has at least 25 cases', () => assert.ok(cases().length >= 25));

  for (const c of cases()) {
    it(`${c.name} -> ${c.status} ${c.code}, nothing changes`, async () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries({ ...good(), ...c.headers }))
        if (v !== undefined) headers[k] = v;
      const special: Record<string, () => Promise<string>> = {
        EXPIRED: () => token(user, { expiresIn: Math.floor(Date.now() / 1000) - 10 }),
        WRONGKEY: () => token(user, { secret: 'another-secret-that-is-long-enough-0123456789' }),
        HS384: () => token(user, { alg: 'HS384' }),
        BADSUB: () => token('a{b}'),
        OTHER: () => token('someone_else'),
      };
      const make = special[headers.authorization ?? ''];
      if (make) headers.authorization = `Bearer ${await make()}`;
      const body =
        c.body === 'SAME_SKU'
          ? JSON.stringify({ sku, name: 'x', stock: 1, perUserLimit: 1 })
          : c.body;

      const k = api.engine.keys.forSku(sku);
      // Every key a case could touch, and only those: the SKU's, its partition's index and
      // stream, the user's order and claims (a partition-wide SCAN made the suite's time
      // depend on whatever else the Redis held).
      const claims = api.engine.keys.idempotencyClaim(user, 'x').replace(/:x$/, ':*');
      const touchable = [k.sku, k.users, k.expiries, k.events, k.order(orderId), claims];
      const before = await snapshot(api.engine.redis, touchable);
      const rowsBefore = await api.engine.db.sku.count();

      const res = await fetch(`${api.url}${(c.path ?? purchase)(sku)}`, {
        method: c.method ?? 'POST',
        headers,
        ...(body !== undefined && c.method !== 'GET' ? { body } : {}),
      });
      const json = (await res.json()) as {
        error: { code: string; message: string; retryable: boolean };
      };
      assert.equal(res.status, c.status, JSON.stringify(json));
      assert.equal(json.error.code, c.code);
      assert.equal(typeof json.error.message, 'string');
      assert.equal(json.error.retryable, false);

      const after = await snapshot(api.engine.redis, touchable);
      // A business refusal (LIMIT_EXCEEDED here) included: the purchase script takes back
      // the key's claim in the step that refused, so nothing at all is left of it.
      assert.deepEqual(after, before);
      assert.equal(await api.engine.db.sku.count(), rowsBefore);
    });
  }
});
