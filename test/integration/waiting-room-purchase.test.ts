// The purchase side of admission control, on the real services: a purchase of a SKU that
// sells through its waiting room needs the Admission-Token of the buyer's admitted ticket
// (403 NOT_ADMITTED otherwise, changing nothing), a SKU that requires qualification needs
// the seller's Qualification-Token (403 NOT_QUALIFIED), neither pass is transferable, and
// a queued sale sells exactly its stock while its queue closes on the buyers left waiting.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PassTokens } from '../../src/admission/tokens.js';
import {
  assertStoresAgree,
  buy,
  buyers,
  createSku,
  snapshot,
  startEngine,
  testConfig,
  token,
  uid,
  until,
  type RunningApi,
} from '../helpers.js';
import { join, poll } from '../support/waiting-room.js';

const cfg = testConfig();
const passes = new PassTokens(cfg.ADMISSION_SECRET, cfg.QUALIFICATION_SECRET);
const inAMinute = () => Date.now() + 60_000;

async function purchase(
  api: RunningApi,
  sku: string,
  jwt: string,
  key: string,
  headers: { admission?: string; qualification?: string } = {},
) {
  const { status, body } = await buy(api, sku, jwt, key, 1, {
    ...(headers.admission ? { 'admission-token': headers.admission } : {}),
    ...(headers.qualification ? { 'qualification-token': headers.qualification } : {}),
  });
  return { status, body: body as { orderId?: string; error?: { code: string } } };
}

/** Joins and polls until admitted; answers the Admission-Token. */
async function admitted(api: RunningApi, sku: string, jwt: string, qualification?: string) {
  const j = await join(api, sku, jwt, qualification);
  assert.equal(j.status, 202, JSON.stringify(j.body));
  return until(
    'admitted',
    async () => {
      const v = (await poll(api, sku, jwt, j.body.ticket)).body;
      return v.status === 'admitted' ? v.admissionToken : undefined;
    },
    15_000,
    200,
  );
}

describe('purchases through the waiting room', () => {
  let api: RunningApi;
  before(async () => {
    api = await startEngine(['api', 'sweeper', 'relay', 'writer'], {
      RATE_LIMIT_BUYER_PER_S: '1000',
      RATE_LIMIT_BUYER_BURST: '1000',
    });
  });
  after(() => api.stop());

  it('a queued SKU refuses a purchase without a valid admitted pass (403 NOT_ADMITTED) and changes nothing', async () => {
    const sku = uid('nadm');
    const otherSku = uid('nadm2');
    for (const s of [sku, otherSku])
      await createSku(api, {
        sku: s,
        stock: 5,
        perUserLimit: 1,
        waitingRoom: { admissionsPerSecond: 20 },
      });
    const alice = uid('alice');
    const bob = uid('bob');
    const [aliceJwt, bobJwt] = await Promise.all([token(alice), token(bob)]);
    const alicePass = await admitted(api, sku, aliceJwt);
    const aliceOtherPass = await admitted(api, otherSku, aliceJwt);
    const [head, payload, signature] = alicePass!.split('.') as [string, string, string];
    const refusals: [string, string, string | undefined][] = [
      ['no pass', bobJwt, undefined],
      ["another buyer's pass", bobJwt, alicePass],
      ['a pass for another SKU', aliceJwt, aliceOtherPass],
      [
        'a lapsed pass',
        aliceJwt,
        passes.signAdmission({
          buyer: alice,
          sku,
          ticket: 'x',
          expiresAtMs: Date.now() - 1000,
        }),
      ],
      ['a tampered pass', aliceJwt, `${head}.${payload}.${signature.slice(0, -3)}abc`],
      [
        'a qualification pass',
        aliceJwt,
        passes.signQualification({ buyer: alice, sku, expiresAtMs: inAMinute() }),
      ],
    ];
    const k = api.engine.keys.forSku(sku);
    // Everything of the SKU but the buyers' join and poll limits, which lapse on their own
    // within milliseconds of the last poll, and the last event id of its partition's stream
    // (not the stream itself: the relay deletes what it has relayed whenever it has).
    const state = async () => {
      const keys = await snapshot(api.engine.redis, [`${k.sku}*`]);
      for (const key of keys.keys()) if (key.includes(':q:rl:')) keys.delete(key);
      const info = (await api.engine.redis.xinfo('STREAM', k.events)) as unknown[];
      keys.set('last event id', String(info[info.indexOf('last-generated-id') + 1]));
      return keys;
    };
    const before = await state();
    for (const [why, jwt, pass] of refusals) {
      const r = await purchase(api, sku, jwt, `refused-${uid('k')}`, { admission: pass });
      assert.equal(r.status, 403, `${why}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error?.code, 'NOT_ADMITTED', why);
    }
    assert.deepEqual(await state(), before, 'refused purchases change nothing');
    // The key a refused attempt used is free: the admitted retry decides afresh.
    const key = uid('k');
    assert.equal((await purchase(api, sku, aliceJwt, key)).status, 403);
    const ok = await purchase(api, sku, aliceJwt, key, { admission: alicePass });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    // A SKU without a waiting room needs no pass at all.
    const open = uid('open');
    await createSku(api, { sku: open, stock: 1, perUserLimit: 1 });
    assert.equal((await purchase(api, open, bobJwt, uid('k'))).status, 201);
  });

  it('a SKU that requires qualification refuses a purchase without the seller’s pass (403 NOT_QUALIFIED)', async () => {
    const sku = uid('nqual');
    await createSku(api, { sku, stock: 5, perUserLimit: 1, qualificationRequired: true });
    const carol = uid('carol');
    const dave = uid('dave');
    const [carolJwt, daveJwt] = await Promise.all([token(carol), token(dave)]);
    const carolPass = passes.signQualification({
      buyer: carol,
      sku,
      expiresAtMs: inAMinute(),
    });
    for (const [why, jwt, pass] of [
      ['no pass', carolJwt, undefined],
      ["another buyer's pass", daveJwt, carolPass],
      [
        'a lapsed pass',
        carolJwt,
        passes.signQualification({ buyer: carol, sku, expiresAtMs: Date.now() - 1000 }),
      ],
    ] as const) {
      const r = await purchase(api, sku, jwt, uid('k'), { qualification: pass });
      assert.equal(r.status, 403, why);
      assert.equal(r.body.error?.code, 'NOT_QUALIFIED', why);
    }
    const ok = await purchase(api, sku, carolJwt, uid('k'), { qualification: carolPass });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));

    // Both: qualified to join the queue, then admitted, and both passes on the purchase.
    const both = uid('both');
    await createSku(api, {
      sku: both,
      stock: 5,
      perUserLimit: 1,
      qualificationRequired: true,
      waitingRoom: { admissionsPerSecond: 20 },
    });
    const q = passes.signQualification({ buyer: carol, sku: both, expiresAtMs: inAMinute() });
    const a = await admitted(api, both, carolJwt, q);
    const onlyAdmitted = await purchase(api, both, carolJwt, uid('k'), { admission: a });
    assert.equal(onlyAdmitted.body.error?.code, 'NOT_QUALIFIED');
    const onlyQualified = await purchase(api, both, carolJwt, uid('k'), { qualification: q });
    assert.equal(onlyQualified.body.error?.code, 'NOT_ADMITTED');
    const bothPasses = await purchase(api, both, carolJwt, uid('k'), {
      admission: a,
      qualification: q,
    });
    assert.equal(bothPasses.status, 201, JSON.stringify(bothPasses.body));
  });

  it('a queued sale sells exactly its stock; the buyers left waiting hear the queue closed', async () => {
    const sku = uid('exact');
    const stock = 20;
    await createSku(api, {
      sku,
      stock,
      perUserLimit: 1,
      waitingRoom: { admissionsPerSecond: 15 },
    });
    const people = await buyers(sku, 60);
    const tickets = await Promise.all(people.map(async (p) => (await join(api, sku, p.jwt)).body));
    assert.ok(tickets.every((t) => t.status === 'waiting'));
    // Every buyer polls; once admitted, buys, and also tries without the pass.
    const outcomes = await Promise.all(
      people.map(async (p, i) => {
        const ticket = tickets[i]!.ticket;
        for (;;) {
          const v = (await poll(api, sku, p.jwt, ticket)).body;
          if (v.status === 'closed') return 'closed';
          if (v.status === 'admitted') {
            const without = await purchase(api, sku, p.jwt, uid('k'));
            // Once an instance knows the SKU sold out it says so before asking Redis.
            assert.ok(
              ['NOT_ADMITTED', 'SOLD_OUT'].includes(without.body.error?.code ?? ''),
              JSON.stringify(without.body),
            );
            const r = await purchase(api, sku, p.jwt, uid('k'), { admission: v.admissionToken });
            return r.status === 201 ? 'bought' : (r.body.error?.code ?? String(r.status));
          }
          await new Promise((r) => setTimeout(r, 150));
        }
      }),
    );
    const count = (o: string) => outcomes.filter((x) => x === o).length;
    assert.equal(count('bought'), stock, JSON.stringify(outcomes));
    assert.equal(count('bought') + count('closed') + count('SOLD_OUT'), people.length);
    assert.ok(count('closed') > 0, 'some buyers were still waiting when it sold out');
    const late = await join(api, sku, await token(uid('late')));
    assert.equal(late.body.error?.code, 'QUEUE_CLOSED');
    const [c] = await assertStoresAgree(api.engine, [sku]);
    assert.equal(c!.db.available, 0);
    const orders = await api.engine.db.order.findMany({ where: { skuId: sku } });
    assert.equal(orders.length, stock);
    assert.equal(new Set(orders.map((o) => o.userId)).size, stock, 'one unit per buyer');
  });
});
