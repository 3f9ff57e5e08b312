// Rate limits on the purchase route, decided in the purchase script (GCRA): a buyer
// flooding one SKU with fresh keys gets 429 RATE_LIMITED with Retry-After beyond its burst,
// and what the flood leaves in Redis is bounded by what was sold, not by what was sent.
// Per client address too, behind a trusted proxy whose X-Forwarded-For is believed only
// as far as it is trusted.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import {
  buy as buyOnce,
  buyers,
  createSku,
  redisState,
  scanKeys,
  startApi,
  token,
  uid,
  type RunningApi,
} from '../helpers.js';

/** The tokens of `n` buyers. */
const buyerTokens = async (prefix: string, n: number) =>
  (await buyers(prefix, n)).map((b) => b.jwt);

/** A purchase of one unit: its status, error code and Retry-After. */
async function buy(
  api: RunningApi,
  sku: string,
  jwt: string,
  key: string,
  headers: Record<string, string> = {},
) {
  const r = await buyOnce(api, sku, jwt, key, 1, headers);
  return {
    status: r.status,
    code: r.body.error?.code as string | undefined,
    retryAfter: r.retryAfter,
  };
}

describe('per-buyer rate limit', () => {
  let api: RunningApi;
  before(async () => {
    api = await startApi({ RATE_LIMIT_BUYER_PER_S: '5', RATE_LIMIT_BUYER_BURST: '10' });
  });
  after(() => api?.stop());

  it('a buyer flooding fresh keys gets 429 beyond its burst, and the flood leaves nothing but its orders', async () => {
    const sku = uid('flood');
    await createSku(api, { sku, stock: 1000, perUserLimit: 1000 });
    const buyer = uid('flooder');
    const jwt = await token(buyer);
    // Every key but the live view's counters (each API process publishes its own).
    const keys = async () =>
      (await scanKeys(api.engine.redis, 'fs:*')).filter((k) => !k.startsWith('fs:live:'));
    const keysBefore = new Set(await keys());
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 400 }, (_, i) => buy(api, sku, jwt, `flood-${i}`)),
    );
    const elapsedS = (Date.now() - started) / 1000;
    const created = answers.filter((a) => a.status === 201).length;
    const limited = answers.filter((a) => a.status === 429);
    assert.equal(
      created + limited.length,
      400,
      JSON.stringify(answers.find((a) => a.status !== 201 && a.status !== 429)),
    );
    // The burst, plus what the rate refills while the flood lasts.
    assert.ok(created >= 10, `${created} created`);
    assert.ok(created <= 10 + Math.ceil(5 * elapsedS) + 1, `${created} created in ${elapsedS} s`);
    for (const a of limited) {
      assert.equal(a.code, 'RATE_LIMITED');
      assert.ok(Number(a.retryAfter) >= 1, `Retry-After ${a.retryAfter}`);
    }
    // Memory: one claim per order, no claim for a limited attempt, one GCRA key.
    const claims = await scanKeys(api.engine.redis, `fs:*:idem:${buyer}:*`);
    assert.equal(claims.length, created);
    const limits = await scanKeys(api.engine.redis, `fs:*:rl:${sku}:*`);
    assert.equal(limits.length, 1);
    // Keys: an order and a claim per order, the GCRA key, and the SKU's first
    // per-user hash, expiry index and stream at most. The limited attempts add none.
    const grown = (await keys()).filter((k) => !keysBefore.has(k));
    assert.ok(grown.length <= 2 * created + 4, `${grown.length} keys for ${created} orders`);
    const state = await redisState(api.engine, sku);
    assert.equal(state.available, 1000 - created);
    assert.equal(state.users[buyer], created);
  });

  it('admits again once Retry-After has passed', async () => {
    const sku = uid('retry');
    await createSku(api, { sku, stock: 100, perUserLimit: 100 });
    const jwt = await token(uid('patient'));
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => buy(api, sku, jwt, `r-${i}`)),
    );
    const limited = answers.find((a) => a.status === 429);
    assert.ok(limited, 'the burst of 10 is exceeded');
    await sleep(Number(limited.retryAfter) * 1000);
    assert.equal((await buy(api, sku, jwt, 'after-wait')).status, 201);
  });

  it('limits each buyer on its own: another buyer is not slowed by a flooder', async () => {
    const sku = uid('fair');
    await createSku(api, { sku, stock: 1000, perUserLimit: 1000 });
    const flooder = await token(uid('f'));
    const other = await token(uid('o'));
    const [flood, calm] = await Promise.all([
      Promise.all(Array.from({ length: 100 }, (_, i) => buy(api, sku, flooder, `f-${i}`))),
      Promise.all(Array.from({ length: 5 }, (_, i) => buy(api, sku, other, `o-${i}`))),
    ]);
    assert.ok(flood.some((a) => a.status === 429));
    assert.deepEqual(
      calm.map((a) => a.status),
      [201, 201, 201, 201, 201],
    );
  });

  it('counts a purchase once when the rebuild restored its key to an earlier order', async () => {
    // The -16 path: the first script call counts the request, finds the key's claim
    // restored to the order the key made before Redis lost its data, and the caller calls
    // again to replay that order. The second call must not count the request again: with
    // a burst of one it would answer 429 for a purchase the buyer made.
    const sku = uid('restored');
    await createSku(api, { sku, stock: 10, perUserLimit: 10 });
    const buyer = uid('restorer');
    const jwt = await token(buyer);
    const first = await buyOnce(api, sku, jwt, uid('k'));
    assert.equal(first.status, 201);
    const e = api.engine;
    await e.inventory.setAdmission(sku, {
      waitingRoom: null,
      qualificationRequired: false,
      rateLimit: { buyerPerSecond: 0.01, buyerBurst: 1 },
    });
    await e.redis.del(e.keys.rateLimit(sku, 'b', buyer));
    const key = uid('k');
    const k = e.keys.forSku(sku);
    await e.redis.hset(
      k.restoredClaims,
      e.keys.idempotencyClaim(buyer, key),
      `${first.body.orderId}|${Date.now() + 60_000}`,
    );
    await e.redis.hset(k.sku, 'claimsRestoredUntil', String(Date.now() + 60_000));

    const again = await buyOnce(api, sku, jwt, key);
    assert.equal(again.status, 201, JSON.stringify(again.body));
    assert.equal(again.body.orderId, first.body.orderId);
    assert.equal(again.replayed, true);
    // The one token the burst holds went to that request: the next is limited.
    assert.equal((await buy(api, sku, jwt, uid('k'))).status, 429);
  });

  it('counts limited attempts in the metrics, per SKU', async () => {
    const text = await (await fetch(`${api.url}/metrics`)).text();
    assert.match(
      text,
      /flashsale_purchases_total\{outcome="RATE_LIMITED",sku="flood-[0-9a-f]+"\} \d+/,
    );
  });
});

describe('per-client-address rate limit behind a trusted proxy', () => {
  let api: RunningApi;
  before(async () => {
    api = await startApi({
      RATE_LIMIT_BUYER_PER_S: '0',
      RATE_LIMIT_CLIENT_PER_S: '1',
      RATE_LIMIT_CLIENT_BURST: '5',
      TRUSTED_PROXY_HOPS: '1',
    });
  });
  after(() => api?.stop());

  it('limits many buyers behind one address, believes only the trusted hop, and spares other addresses', async () => {
    const sku = uid('addr');
    await createSku(api, { sku, stock: 1000, perUserLimit: 10 });
    const jwts = await buyerTokens(sku, 20);
    // The client prepends whatever it likes; the proxy appends the address it saw.
    const fromBot = (i: number) => ({ 'x-forwarded-for': `10.0.0.${i}, 203.0.113.7` });
    const bot = await Promise.all(jwts.map((jwt, i) => buy(api, sku, jwt, `bot-${i}`, fromBot(i))));
    const created = bot.filter((a) => a.status === 201).length;
    assert.ok(created >= 5 && created <= 7, `${created} created from one address`);
    assert.ok(bot.filter((a) => a.status === 429).every((a) => a.code === 'RATE_LIMITED'));
    const elsewhere = await buy(api, sku, jwts[0]!, 'elsewhere', {
      'x-forwarded-for': '198.51.100.9',
    });
    assert.equal(elsewhere.status, 201);
    const state = await redisState(api.engine, sku);
    assert.equal(state.available, 1000 - created - 1);
  });
});

describe("a SKU's own client-address limit", () => {
  // The deployment limits no address: only the SKUs that ask for it are limited.
  let api: RunningApi;
  let limitedApi: RunningApi;
  before(async () => {
    const proxied = { RATE_LIMIT_BUYER_PER_S: '0', TRUSTED_PROXY_HOPS: '1' };
    api = await startApi({ ...proxied, RATE_LIMIT_CLIENT_PER_S: '0' });
    limitedApi = await startApi({
      ...proxied,
      RATE_LIMIT_CLIENT_PER_S: '0.01',
      RATE_LIMIT_CLIENT_BURST: '2',
    });
  });
  after(async () => {
    await api?.stop();
    await limitedApi?.stop();
  });

  const from = (address: string) => ({ 'x-forwarded-for': address });

  it('limits concurrent purchases of many buyers behind one address to the burst, sells exactly that, and keeps the setting in PostgreSQL', async () => {
    const sku = uid('skuaddr');
    const open = uid('open');
    // 0.01 a second: nothing refills during the test, so exactly the burst gets through.
    await createSku(api, {
      sku,
      stock: 1000,
      perUserLimit: 10,
      rateLimit: { clientPerSecond: 0.01, clientBurst: 4 },
    });
    await createSku(api, { sku: open, stock: 1000, perUserLimit: 10 });
    const jwts = await buyerTokens(sku, 20);
    const bot = await Promise.all(
      jwts.map((jwt, i) => buy(api, sku, jwt, `bot-${i}`, from('203.0.113.8'))),
    );
    assert.equal(bot.filter((a) => a.status === 201).length, 4);
    const limited = bot.filter((a) => a.status === 429);
    assert.equal(limited.length, 16);
    assert.ok(limited.every((a) => a.code === 'RATE_LIMITED' && Number(a.retryAfter) >= 1));
    const state = await redisState(api.engine, sku);
    assert.equal(state.available, 1000 - 4);
    // Another address is its own client; another SKU has no limit of its own.
    assert.equal((await buy(api, sku, jwts[0]!, 'elsewhere', from('198.51.100.9'))).status, 201);
    const other = await Promise.all(
      jwts.map((jwt, i) => buy(api, open, jwt, `open-${i}`, from('203.0.113.8'))),
    );
    assert.ok(other.every((a) => a.status === 201));

    // A purchase whose address is unknown (a caller in the process) is no client's: the
    // SKU's client limit does not lump such calls into one bucket.
    const inProcess = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        api.engine.inventory.purchase(`${sku}-p${i}`, sku, 1, `p-${i}`).then(() => 'created'),
      ),
    );
    assert.deepEqual(inProcess, Array<string>(6).fill('created'));

    // The setting lives in PostgreSQL, where every rebuild of the SKU's Redis state reads it.
    const row = await api.engine.db.sku.findUniqueOrThrow({ where: { id: sku } });
    assert.deepEqual([row.clientRatePerSecond, row.clientBurst], [0.01, 4]);
  });

  it("limits the joins of a queued SKU behind one address, and a rate of 0 lifts the deployment's limit", async () => {
    const queued = uid('qaddr');
    await createSku(api, {
      sku: queued,
      stock: 100,
      perUserLimit: 1,
      waitingRoom: { admissionsPerSecond: 0.001 },
      rateLimit: { clientPerSecond: 0.01, clientBurst: 3 },
    });
    const jwts = await buyerTokens(queued, 10);
    const joins = await Promise.all(
      jwts.map((jwt) =>
        fetch(`${api.url}/v1/skus/${queued}/queue`, {
          method: 'POST',
          headers: { authorization: `Bearer ${jwt}`, ...from('203.0.113.9') },
        }).then((r) => r.status),
      ),
    );
    assert.equal(joins.filter((s) => s === 202).length, 3);
    assert.equal(joins.filter((s) => s === 429).length, 7);
    assert.equal(await api.engine.redis.zcard(api.engine.keys.queue(queued).waiting), 3);

    // The other API's deployment allows each address a burst of 2: how many of the ten
    // buyers' purchases from one address go through, for a SKU with these limits.
    const boughtFromOneAddress = async (rateLimit: Record<string, number>) => {
      const sku = uid('deploy');
      await createSku(limitedApi, { sku, stock: 100, perUserLimit: 10, rateLimit });
      const answers = await Promise.all(
        jwts.map((jwt, i) => buy(limitedApi, sku, jwt, `${sku}-${i}`, from('203.0.113.10'))),
      );
      return answers.filter((a) => a.status === 201).length;
    };
    // A rate of 0 lifts the deployment's limit for the SKU...
    assert.equal(await boughtFromOneAddress({ clientPerSecond: 0, clientBurst: 1 }), 10);
    // ...while a SKU with a buyer limit only keeps the deployment's client limit.
    assert.equal(await boughtFromOneAddress({ buyerPerSecond: 100, buyerBurst: 100 }), 2);
  });
});

describe('rate limit arithmetic (microseconds)', () => {
  let api: RunningApi;
  before(async () => {
    api = await startApi({
      RATE_LIMIT_BUYER_PER_S: '3',
      RATE_LIMIT_BUYER_BURST: '3',
      RATE_LIMIT_CLIENT_PER_S: '100000',
      RATE_LIMIT_CLIENT_BURST: '10',
    });
  });
  after(() => api?.stop());

  const attempt = (buyer: string, sku: string, key: string, clientAddress?: string) =>
    api.engine.inventory.purchase(buyer, sku, 1, key, clientAddress ? { clientAddress } : {}).then(
      () => 'created',
      (e: { code?: string }) => e.code ?? String(e),
    );

  it('lets a whole burst through at one instant, then refuses', async () => {
    const sku = uid('burst');
    await createSku(api, { sku, stock: 100, perUserLimit: 100 });
    const buyer = uid('b');
    // Sent together: one pipeline, run within the same millisecond or so. Rounding each
    // step up to a whole millisecond let only 2 of a burst of 3 through.
    const first = await Promise.all([0, 1, 2].map((i) => attempt(buyer, sku, `k${i}`)));
    assert.deepEqual(first, ['created', 'created', 'created']);
    assert.equal(await attempt(buyer, sku, 'k3'), 'RATE_LIMITED');
  });

  it('counts rates above a thousand a second exactly', async () => {
    const sku = uid('fast');
    await createSku(api, { sku, stock: 100, perUserLimit: 100 });
    // 100,000 a second with a burst of 10 from one address: ten at once pass (at whole
    // milliseconds, each step cost 1 ms against a horizon of 0.1 ms: one passed).
    const got = await Promise.all(
      Array.from({ length: 10 }, (_, i) => attempt(uid('c'), sku, `k${i}`, '198.51.100.1')),
    );
    assert.deepEqual(got, Array<string>(10).fill('created'));
  });
});
