// The waiting room and the qualification hook on the real services: admission settings
// (created, echoed, replayed, changed at once, refused when wrong), the admission pace
// measured, the order at the opening (random) and after it (arrival), tickets bound to
// their buyer and SKU, lapsed and tampered passes refused, a sold-out SKU closing its
// queue, qualification checked before the queue, the queue routes' rate limits (per buyer
// and per client address), metrics, and after Redis lost its data: the settings coming
// back with a rebuild, the line coming back as its buyers poll, and admitted passes that
// still buy.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { PassTokens } from '../../src/admission/tokens.js';
import {
  buy,
  buyers,
  createSku,
  startApi,
  startEngine,
  testConfig,
  token,
  uid,
  until,
  type RunningApi,
} from '../helpers.js';
import { ownRedis, type OwnRedis } from '../support/redis-server.js';
import { bearer, call, join, poll, type Ticket } from '../support/waiting-room.js';

/** A sample of the API's /metrics, by its line's name and labels; undefined when absent. */
async function metric(api: RunningApi, line: string): Promise<number | undefined> {
  const text = await (await fetch(`${api.url}/metrics`)).text();
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

function setAdmission(api: RunningApi, sku: string, settings: unknown) {
  return call<Record<string, unknown>>(
    api,
    'PUT',
    `/v1/admin/skus/${sku}/admission`,
    api.admin,
    settings,
  );
}

const cfg = testConfig();
const passes = new PassTokens(cfg.ADMISSION_SECRET, cfg.QUALIFICATION_SECRET);

describe('waiting room', () => {
  let api: RunningApi;
  before(async () => {
    // The admitter runs in the sweeper role. The deployment's buyer limit is raised so
    // the tests' polling is never limited, except where a SKU sets its own.
    api = await startEngine(['api', 'sweeper'], {
      RATE_LIMIT_BUYER_PER_S: '1000',
      RATE_LIMIT_BUYER_BURST: '1000',
    });
  });
  after(() => api.stop());

  it('admission settings: created and echoed, the same definition replays, changed at once in Redis, bad ones refused', async () => {
    const sku = uid('adm');
    const definition = {
      sku,
      name: 'Admission',
      stock: 10,
      perUserLimit: 1,
      waitingRoom: { admissionsPerSecond: 2.5 },
      qualificationRequired: true,
      rateLimit: { buyerPerSecond: 2, buyerBurst: 3 },
    };
    const created = await call<Record<string, unknown>>(
      api,
      'POST',
      '/v1/admin/skus',
      api.admin,
      definition,
    );
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.deepEqual(
      {
        waitingRoom: created.body.waitingRoom,
        qualificationRequired: created.body.qualificationRequired,
        rateLimit: created.body.rateLimit,
      },
      {
        waitingRoom: {
          admissionsPerSecond: 2.5,
          admissionsPerUnitLeft: null,
          admissionTtlSeconds: 120,
        },
        qualificationRequired: true,
        rateLimit: { buyerPerSecond: 2, buyerBurst: 3 },
      },
    );
    const k = api.engine.keys.forSku(sku);
    assert.deepEqual(
      await api.engine.redis.hmget(k.sku, 'gate', 'admitRate', 'admitPerUnit', 'admitTtl'),
      ['aq|2|3', '2.5', null, '120'],
    );

    const replay = await call(api, 'POST', '/v1/admin/skus', api.admin, definition);
    assert.equal(replay.status, 201);
    assert.equal(replay.headers.get('idempotent-replayed'), 'true');
    const other = await call<unknown>(api, 'POST', '/v1/admin/skus', api.admin, {
      ...definition,
      waitingRoom: { admissionsPerSecond: 3 },
    });
    assert.equal(other.status, 409, 'another waiting room is another definition');
    assert.equal(other.body.error?.code, 'SKU_EXISTS');

    // Changed later: PostgreSQL and the Redis hash at once (the purchase script reads it).
    const changed = await setAdmission(api, sku, {
      waitingRoom: { admissionsPerUnitLeft: 1.5, admissionTtlSeconds: 30 },
    });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.deepEqual(changed.body, {
      sku,
      waitingRoom: {
        admissionsPerSecond: null,
        admissionsPerUnitLeft: 1.5,
        admissionTtlSeconds: 30,
      },
      qualificationRequired: false,
      rateLimit: null,
    });
    assert.deepEqual(
      await api.engine.redis.hmget(k.sku, 'gate', 'admitRate', 'admitPerUnit', 'admitTtl'),
      ['a||', null, '1.5', '30'],
    );
    const row = await api.engine.db.sku.findUniqueOrThrow({ where: { id: sku } });
    assert.equal(row.admissionsPerUnitLeft, 1.5);
    assert.equal(row.qualificationRequired, false);
    assert.equal(row.admissionVersion, 1);
    // The stock state is untouched: no event, no sequence.
    assert.deepEqual(await api.engine.redis.hmget(k.sku, 'available', 'seq'), ['10', '0']);

    const off = await setAdmission(api, sku, {});
    assert.equal(off.status, 200);
    assert.equal(await api.engine.redis.hget(k.sku, 'gate'), null, 'off is absent');
    const jwt = await token(uid('u'));
    const refused = await join(api, sku, jwt);
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error?.code, 'QUEUE_NOT_ENABLED');

    // An older version never overwrites a newer one in Redis (two changes racing).
    const script = await api.engine.redis.fsSetAdmission(k.sku, 1, 'gate', 'a||');
    assert.deepEqual(script, [2]);
    assert.equal(await api.engine.redis.hget(k.sku, 'gate'), null);

    for (const bad of [
      { waitingRoom: {} },
      { waitingRoom: { admissionsPerSecond: 0 } },
      { waitingRoom: { admissionsPerSecond: 5, admissionTtlSeconds: 0 } },
      { rateLimit: { buyerPerSecond: -1, buyerBurst: 1 } },
      { rateLimit: { buyerPerSecond: 1 } },
      { rateLimit: { clientPerSecond: 1 } },
      { rateLimit: { clientPerSecond: 1, clientBurst: 0 } },
      { rateLimit: {} },
      { qualificationRequired: 'yes' },
      { queue: true },
    ]) {
      const r = await setAdmission(api, sku, bad);
      assert.equal(r.status, 400, JSON.stringify(bad));
      const c = await call(api, 'POST', '/v1/admin/skus', api.admin, {
        ...definition,
        sku: uid('bad'),
        ...bad,
      });
      assert.equal(c.status, 400, `create with ${JSON.stringify(bad)}`);
    }
    // A SKU without admission control keeps the hash it always had (the purchase script
    // reads absent fields as off).
    const plain = uid('plain');
    await createSku(api, { sku: plain, stock: 1, perUserLimit: 1 });
    assert.deepEqual(
      Object.keys(await api.engine.redis.hgetall(api.engine.keys.forSku(plain).sku)).sort(),
      ['available', 'endsAt', 'limit', 'paused', 'seq', 'startsAt', 'supplied', 'ttl'],
    );
    const missing = await setAdmission(api, uid('nosuch'), {});
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error?.code, 'SKU_NOT_FOUND');
    const noQueue = await join(api, uid('nosuch'), jwt);
    assert.equal(noQueue.status, 404);
    assert.equal(noQueue.body.error?.code, 'SKU_NOT_FOUND');
  });

  it('admits at the configured rate from the opening', async () => {
    const sku = uid('rate');
    const rate = 8;
    const opensAt = Date.now() + 2500;
    await createSku(api, {
      sku,
      stock: 1000,
      perUserLimit: 1,
      startsAt: new Date(opensAt).toISOString(),
      waitingRoom: { admissionsPerSecond: rate },
    });
    const people = await buyers(uid('rb'), 80);
    const joined = await Promise.all(people.map((p) => join(api, sku, p.jwt)));
    assert.ok(
      joined.every((j) => j.status === 202 && j.body.status === 'waiting'),
      JSON.stringify(joined.find((j) => j.status !== 202)?.body),
    );
    const early = joined[0]!.body;
    assert.ok(
      early.estimatedWaitSeconds !== null && early.estimatedWaitSeconds >= 1,
      `an estimate counts the time to the opening: ${JSON.stringify(early)}`,
    );
    // Nobody is admitted before the opening.
    await sleep(Math.max(0, opensAt - Date.now() - 300));
    assert.equal(await api.engine.redis.zcard(api.engine.keys.queue(sku).admitted), 0);

    // Measured from the admission instants Redis recorded (admittedUntil - TTL).
    await sleep(opensAt + 4500 - Date.now());
    const admitted = await api.engine.redis.zrange(
      api.engine.keys.queue(sku).admitted,
      '0',
      '-1',
      'WITHSCORES',
    );
    const instants: number[] = [];
    for (let i = 1; i < admitted.length; i += 2) instants.push(Number(admitted[i]) - 120_000);
    const first = Math.min(...instants);
    assert.ok(first >= opensAt - 50, 'none admitted before the opening');
    assert.ok(
      first - opensAt < 1000,
      `the first admission came ${first - opensAt} ms after the opening`,
    );
    const windowStart = opensAt + 1000;
    const windowEnd = opensAt + 4000;
    const inWindow = instants.filter((t) => t > windowStart && t <= windowEnd).length;
    const measured = inWindow / ((windowEnd - windowStart) / 1000);
    assert.ok(
      Math.abs(measured - rate) <= rate * 0.2,
      `admitted ${measured.toFixed(2)} per second, configured ${rate}`,
    );
    // The burst at the opening is one pass's credit, not a backlog.
    const inFirstSecond = instants.filter((t) => t <= opensAt + 1000).length;
    assert.ok(inFirstSecond <= rate + 2, `${inFirstSecond} admitted in the first second`);
  });

  it('before the opening the order is drawn at random; after it, arrival order', async () => {
    const sku = uid('order');
    const opensAt = Date.now() + 4000;
    await createSku(api, {
      sku,
      stock: 1000,
      perUserLimit: 1,
      startsAt: new Date(opensAt).toISOString(),
      waitingRoom: { admissionsPerSecond: 25 },
    });
    const early = await buyers(uid('early'), 50);
    const earlyTickets: string[] = [];
    for (const b of early) {
      const j = await join(api, sku, b.jwt); // one at a time: the join order is known
      assert.equal(j.status, 202);
      earlyTickets.push(j.body.ticket);
    }
    // Joining again answers the same ticket.
    const again = await join(api, sku, early[0]!.jwt);
    assert.equal(again.body.ticket, earlyTickets[0]);
    // Before the opening, their places are a random permutation of 1..50.
    const places = await Promise.all(
      early.map(async (b, i) => (await poll(api, sku, b.jwt, earlyTickets[i]!)).body.position!),
    );
    assert.deepEqual(
      [...places].sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    const inJoinOrder = places.every((p, i) => p === i + 1);
    assert.ok(!inJoinOrder, 'places before the opening are not the join order');

    await sleep(Math.max(0, opensAt - Date.now() + 100));
    const late = await buyers(uid('late'), 10);
    const lateTickets: string[] = [];
    for (const b of late) {
      const j = await join(api, sku, b.jwt);
      assert.equal(j.status, 202);
      lateTickets.push(j.body.ticket);
    }
    const all = [...early, ...late];
    const tickets = [...earlyTickets, ...lateTickets];
    const admittedAt = await until(
      'every ticket admitted',
      async () => {
        const views = await Promise.all(all.map((b, i) => poll(api, sku, b.jwt, tickets[i]!)));
        if (!views.every((v) => v.body.status === 'admitted')) return undefined;
        return views.map((v) => Date.parse(v.body.admittedUntil!));
      },
      20_000,
      250,
    );
    const earlyAt = admittedAt.slice(0, 50);
    const lateAt = admittedAt.slice(50);
    assert.ok(
      Math.max(...earlyAt) <= Math.min(...lateAt),
      'everyone who came before the opening is admitted before anyone who came after',
    );
    for (let i = 1; i < lateAt.length; i++)
      assert.ok(lateAt[i - 1]! <= lateAt[i]!, `late joiners admitted in arrival order (${i})`);
    // The admission order of the early ones follows their drawn places, not their arrival.
    const byPlace = early.map((_, i) => i).sort((a, b) => places[a]! - places[b]!);
    for (let i = 1; i < byPlace.length; i++)
      assert.ok(earlyAt[byPlace[i - 1]!]! <= earlyAt[byPlace[i]!]!, 'admitted in drawn order');
    const earlyInJoinOrder = earlyAt.every((t, i) => i === 0 || earlyAt[i - 1]! <= t);
    assert.ok(!earlyInJoinOrder, 'the early ones are not admitted in join order');
  });

  it('a ticket and its pass belong to one buyer and one SKU; lapsed and tampered passes are refused', async () => {
    const sku = uid('own');
    const otherSku = uid('own2');
    for (const s of [sku, otherSku])
      await createSku(api, {
        sku: s,
        stock: 100,
        perUserLimit: 1,
        waitingRoom: { admissionsPerSecond: 50, admissionTtlSeconds: 2 },
      });
    const [alice, bob] = await buyers(uid('own'), 2);
    const a = await join(api, sku, alice!.jwt);
    assert.equal(a.status, 202);
    const ticket = a.body.ticket;
    // Its id in Redis, its place in line, the queue's epoch, and the API's signature.
    assert.match(ticket, /^[A-Za-z0-9_-]{22}~[0-9]+~[A-Za-z0-9_-]{11}~[A-Za-z0-9_-]{22}$/);

    for (const [who, s] of [
      [bob!, sku],
      [alice!, otherSku],
    ] as const) {
      const r = await poll(api, s, who.jwt, ticket);
      assert.equal(r.status, 404, `${who.id} on ${s}`);
      assert.equal(r.body.error?.code, 'TICKET_NOT_FOUND');
    }
    const malformed = await poll(api, sku, alice!.jwt, 'not-a-ticket');
    assert.equal(malformed.body.error?.code, 'TICKET_NOT_FOUND');
    const anonymous = await call(api, 'GET', `/v1/skus/${sku}/queue/${ticket}`, {});
    assert.equal(anonymous.status, 401);

    const admitted = await until(
      'admitted',
      async () => {
        const v = await poll(api, sku, alice!.jwt, ticket);
        return v.body.status === 'admitted' ? v.body : undefined;
      },
      10_000,
    );
    const pass = admitted.admissionToken!;
    assert.ok(pass, 'an admitted ticket carries its Admission-Token');
    assert.equal(admitted.position, 0);
    assert.ok(Date.parse(admitted.admittedUntil!) > Date.now());
    assert.equal(passes.admits(pass, alice!.id, sku), true);
    assert.equal(passes.admits(pass, bob!.id, sku), false, 'another buyer');
    assert.equal(passes.admits(pass, alice!.id, otherSku), false, 'another SKU');
    assert.equal(passes.qualifies(pass, alice!.id, sku), false, 'not a qualification');
    const [head, payload, signature] = pass.split('.') as [string, string, string];
    const forged = JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub: string };
    forged.sub = bob!.id;
    const tampered = [
      `${head}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${signature}`,
      `${head}.${payload}.${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BB' : 'AA'}`,
      `${head}.${payload}.`,
    ];
    for (const t of tampered) {
      assert.equal(passes.admits(t, bob!.id, sku), false, t);
      assert.equal(passes.admits(t, alice!.id, sku), false, t);
    }
    const foreign = new PassTokens('x'.repeat(40), cfg.QUALIFICATION_SECRET);
    const other = foreign.signAdmission({
      buyer: alice!.id,
      sku,
      ticket,
      expiresAtMs: Date.now() + 60_000,
    });
    assert.equal(passes.admits(other, alice!.id, sku), false, 'signed with another secret');
    const lapsed = passes.signAdmission({
      buyer: alice!.id,
      sku,
      ticket,
      expiresAtMs: Date.now() - 1000,
    });
    assert.equal(passes.admits(lapsed, alice!.id, sku), false, 'expired');

    // Through the routes: the admission lapses after its TTL, and so does its pass.
    await sleep(Date.parse(admitted.admittedUntil!) - Date.now() + 100);
    const expired = await poll(api, sku, alice!.jwt, ticket);
    assert.equal(expired.status, 200);
    assert.equal(expired.body.status, 'expired');
    assert.equal(expired.body.admissionToken, undefined);
    assert.equal(passes.admits(pass, alice!.id, sku), false, 'the pass lapsed with it');
    // Joining again after the lapse: a new ticket at the back of the line.
    const rejoined = await join(api, sku, alice!.jwt);
    assert.equal(rejoined.status, 202);
    assert.notEqual(rejoined.body.ticket, ticket);
    assert.equal(rejoined.body.status, 'waiting');
    assert.equal((await poll(api, sku, alice!.jwt, ticket)).body.error?.code, 'TICKET_NOT_FOUND');
  });

  it('a sold-out SKU closes its queue at once; units coming back reopen it', async () => {
    const sku = uid('close');
    // Admits almost never: everyone stays waiting.
    const waitingRoom = { admissionsPerSecond: 0.001 };
    await createSku(api, { sku, stock: 2, perUserLimit: 2, waitingRoom });
    const people = await buyers(uid('cl'), 5);
    const tickets = await Promise.all(people.map(async (p) => (await join(api, sku, p.jwt)).body));
    assert.ok(tickets.every((t) => t.status === 'waiting'));

    // The operator lets one buyer straight in (queue off), who takes both units.
    assert.equal((await setAdmission(api, sku, {})).status, 200);
    const jwt = await token(uid('direct'));
    const bought = await buy(api, sku, jwt, uid('k'), 2);
    assert.equal(bought.status, 201, JSON.stringify(bought.body));
    assert.equal((await setAdmission(api, sku, { waitingRoom })).status, 200);

    const views = await Promise.all(
      people.map((p, i) => poll(api, sku, p.jwt, tickets[i]!.ticket)),
    );
    for (const v of views) {
      assert.equal(v.status, 200);
      assert.equal(v.body.status, 'closed', 'waiting buyers hear at once');
      assert.equal(v.body.position, null);
    }
    const late = await join(api, sku, await token(uid('late')));
    assert.equal(late.status, 409);
    assert.equal(late.body.error?.code, 'QUEUE_CLOSED');

    // A cancelled order brings units back: the line reopens, places kept.
    const cancelled = await fetch(`${api.url}/v1/orders/${bought.body.orderId}/cancel`, {
      method: 'POST',
      headers: bearer(jwt),
    });
    assert.equal(cancelled.status, 200);
    const reopened = await poll(api, sku, people[0]!.jwt, tickets[0]!.ticket);
    assert.equal(reopened.body.status, 'waiting');
    assert.equal(reopened.body.position, tickets[0]!.position);
  });

  it('a sale that ended closes its queue', async () => {
    const sku = uid('ended');
    const endsAt = Date.now() + 1500;
    await createSku(api, {
      sku,
      stock: 5,
      perUserLimit: 1,
      endsAt: new Date(endsAt).toISOString(),
      waitingRoom: { admissionsPerSecond: 0.001 },
    });
    const [p] = await buyers(uid('end'), 1);
    const j = await join(api, sku, p!.jwt);
    assert.equal(j.body.status, 'waiting');
    const k = api.engine.keys.queue(sku);
    // Memory stays bounded: the queue's keys expire a while after the sale's end.
    const ttl = await api.engine.redis.pttl(k.waiting);
    assert.ok(ttl > 0 && ttl <= endsAt + 10 * 60_000 - Date.now() + 1000, `waiting key TTL ${ttl}`);
    assert.ok((await api.engine.redis.pttl(k.tickets)) > 0);
    assert.ok((await api.engine.redis.pttl(k.buyers)) > 0);
    await sleep(endsAt - Date.now() + 100);
    assert.equal((await poll(api, sku, p!.jwt, j.body.ticket)).body.status, 'closed');
    const late = await join(api, sku, await token(uid('late')));
    assert.equal(late.body.error?.code, 'QUEUE_CLOSED');
  });

  it('admissions per unit left: outstanding admissions stay within the cap', async () => {
    const sku = uid('perunit');
    await createSku(api, {
      sku,
      stock: 4,
      perUserLimit: 1,
      waitingRoom: { admissionsPerUnitLeft: 1.5 },
    });
    const people = await buyers(uid('pu'), 12);
    const tickets = await Promise.all(people.map(async (p) => (await join(api, sku, p.jwt)).body));
    await sleep(1500);
    const views = await Promise.all(
      people.map((p, i) => poll(api, sku, p.jwt, tickets[i]!.ticket)),
    );
    const admitted = views.filter((v) => v.body.status === 'admitted').length;
    assert.equal(admitted, 6, '1.5 admissions per unit for 4 units');
    const waiting = views.filter((v) => v.body.status === 'waiting');
    assert.equal(waiting.length, 6);
    assert.deepEqual(
      waiting.map((v) => v.body.position).sort((a, b) => a! - b!),
      [1, 2, 3, 4, 5, 6],
    );
  });

  it('qualification is checked before the queue: none, wrong buyer, wrong SKU, lapsed or forged passes are refused', async () => {
    const sku = uid('qual');
    const otherSku = uid('qual2');
    for (const s of [sku, otherSku])
      await createSku(api, {
        sku: s,
        stock: 10,
        perUserLimit: 1,
        qualificationRequired: true,
        waitingRoom: { admissionsPerSecond: 10 },
      });
    const [carol, dave] = await buyers(uid('q'), 2);
    const inAMinute = Date.now() + 60_000;
    const sign = (buyer: string, s: string, expiresAtMs = inAMinute) =>
      passes.signQualification({ buyer, sku: s, expiresAtMs });
    const admissionNotQualification = passes.signAdmission({
      buyer: carol!.id,
      sku,
      ticket: 'x',
      expiresAtMs: inAMinute,
    });
    const wrongSecret = new PassTokens(cfg.ADMISSION_SECRET, 'y'.repeat(40)).signQualification({
      buyer: carol!.id,
      sku,
      expiresAtMs: inAMinute,
    });
    const refusals: [string, string | undefined][] = [
      ['no token', undefined],
      ['another buyer', sign(dave!.id, sku)],
      ['another SKU', sign(carol!.id, otherSku)],
      ['lapsed', sign(carol!.id, sku, Date.now() - 1000)],
      ['an admission pass', admissionNotQualification],
      ['another secret', wrongSecret],
      ['garbage', 'abc.def.ghi'],
    ];
    for (const [why, t] of refusals) {
      const r = await join(api, sku, carol!.jwt, t);
      assert.equal(r.status, 403, why);
      assert.equal(r.body.error?.code, 'NOT_QUALIFIED', why);
    }
    assert.equal(
      await api.engine.redis.hget(api.engine.keys.queue(sku).buyers, carol!.id),
      null,
      'a refused join leaves no ticket',
    );
    const ok = await join(api, sku, carol!.jwt, sign(carol!.id, sku));
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    assert.equal(ok.body.status, 'waiting');
  });

  it('joins and polls are rate-limited per buyer: 429 with Retry-After, nothing written', async () => {
    const sku = uid('limited');
    await createSku(api, {
      sku,
      stock: 10,
      perUserLimit: 1,
      waitingRoom: { admissionsPerSecond: 0.001 },
      rateLimit: { buyerPerSecond: 0.5, buyerBurst: 2 },
    });
    const [erin, frank] = await buyers(uid('rl'), 2);
    const j = await join(api, sku, erin!.jwt);
    assert.equal(j.status, 202);
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await poll(api, sku, erin!.jwt, j.body.ticket));
    const limited = answers.filter((a) => a.status === 429);
    assert.ok(limited.length >= 2, `statuses ${answers.map((a) => a.status).join(',')}`);
    for (const l of limited) {
      assert.equal(l.body.error?.code, 'RATE_LIMITED');
      const retryAfter = Number(l.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= 2, `Retry-After ${retryAfter}`);
    }
    // Another buyer is not held back.
    const other = await join(api, sku, frank!.jwt);
    assert.equal(other.status, 202);

    // A limited join writes nothing: frank spends his burst on polls, then joins.
    const q = api.engine.keys.queue(sku);
    const fresh = await buyers(uid('rl2'), 1);
    const g = fresh[0]!;
    const fakeTicket = 'A'.repeat(22);
    let status = 0;
    for (let i = 0; i < 5 && status !== 429; i++)
      status = (await poll(api, sku, g.jwt, fakeTicket)).status;
    assert.equal(status, 429);
    const waitingBefore = await api.engine.redis.zcard(q.waiting);
    const refused = await join(api, sku, g.jwt);
    assert.equal(refused.status, 429);
    assert.equal(await api.engine.redis.zcard(q.waiting), waitingBefore);
    assert.equal(await api.engine.redis.hget(q.buyers, g.id), null);
  });

  it('metrics: joins by outcome, admissions and the waiting line per SKU', async () => {
    const sku = uid('metric');
    await createSku(api, {
      sku,
      stock: 100,
      perUserLimit: 1,
      waitingRoom: { admissionsPerSecond: 2 },
    });
    const people = await buyers(uid('m'), 6);
    for (const p of people) await join(api, sku, p.jwt);
    await join(api, sku, people[0]!.jwt);
    await until(
      'an admission',
      async () =>
        (await api.engine.redis.zcard(api.engine.keys.queue(sku).admitted)) > 0 ? 1 : undefined,
      10_000,
    );
    const value = (line: string) => metric(api, line);
    assert.equal(await value(`flashsale_queue_joins_total{outcome="joined",sku="${sku}"}`), 6);
    assert.equal(await value(`flashsale_queue_joins_total{outcome="rejoined",sku="${sku}"}`), 1);
    assert.ok(((await value(`flashsale_queue_admitted_total{sku="${sku}"}`)) ?? 0) >= 1);
    const waiting = await value(`flashsale_queue_waiting{sku="${sku}"}`);
    assert.ok(waiting !== undefined && waiting >= 1 && waiting <= 5, `waiting ${waiting}`);
  });
});

describe('admission settings after Redis lost its data', () => {
  let redis: OwnRedis;
  let api: RunningApi;
  before(async () => {
    redis = await ownRedis();
    // The rebuild waits for the pipeline: the relay and the writer run too.
    api = await startEngine(['writer', 'relay', 'sweeper', 'api'], { REDIS_URL: redis.url });
  });
  after(async () => {
    await api?.stop();
    await redis?.close();
  });

  /** A SKU whose waiting room opens in 10 minutes: places are drawn, nobody is admitted. */
  async function lineBeforeOpening(prefix: string): Promise<string> {
    const sku = uid(prefix);
    await createSku(api, {
      sku,
      stock: 10,
      perUserLimit: 1,
      startsAt: new Date(Date.now() + 600_000).toISOString(),
      waitingRoom: { admissionsPerSecond: 1 },
    });
    return sku;
  }

  /** What admit-6.lua does to a ticket whose admission lapsed long ago. */
  async function forget(sku: string, buyer: string, ticket: string): Promise<void> {
    const q = api.engine.keys.queue(sku);
    const id = ticket.split('~')[0]!;
    await api.engine.redis.zrem(q.waiting, id);
    await api.engine.redis.hdel(q.tickets, id);
    await api.engine.redis.hdel(q.buyers, buyer);
  }

  it('a rebuild restores the waiting room, the qualification hook and the rate limit', async () => {
    const sku = uid('rebuilt');
    await createSku(api, {
      sku,
      stock: 7,
      perUserLimit: 1,
      waitingRoom: { admissionsPerSecond: 4, admissionsPerUnitLeft: 2, admissionTtlSeconds: 45 },
      qualificationRequired: true,
      rateLimit: { buyerPerSecond: 3, buyerBurst: 6 },
    });
    // Changed once after creation: the rebuild must bring back the latest settings.
    const changed = await setAdmission(api, sku, {
      waitingRoom: { admissionsPerSecond: 5, admissionsPerUnitLeft: 2, admissionTtlSeconds: 45 },
      qualificationRequired: true,
      rateLimit: { buyerPerSecond: 3, buyerBurst: 6 },
    });
    assert.equal(changed.status, 200);
    const fields = ['gate', 'admitRate', 'admitPerUnit', 'admitTtl', 'admissionVersion'];
    const k = api.engine.keys.forSku(sku);
    const before = await api.engine.redis.hmget(k.sku, ...fields);
    assert.deepEqual(before, ['aq|3|6', '5', '2', '45', '1']);

    await api.engine.redis.flushall();
    const [p] = await buyers(uid('rb'), 1);
    const qualification = passes.signQualification({
      buyer: p!.id,
      sku,
      expiresAtMs: Date.now() + 60_000,
    });
    // The first requests answer 503 while the SKU is rebuilt from PostgreSQL.
    const joined = await until(
      'the SKU rebuilt',
      async () => {
        const r = await join(api, sku, p!.jwt, qualification);
        if (r.status === 503) {
          assert.equal(r.body.error?.code, 'SKU_UNAVAILABLE');
          return undefined;
        }
        return r;
      },
      30_000,
      200,
    );
    assert.equal(joined.status, 202, JSON.stringify(joined.body));
    assert.deepEqual(await api.engine.redis.hmget(k.sku, ...fields), before);
    const unqualified = await join(api, sku, (await buyers(uid('rb2'), 1))[0]!.jwt);
    assert.equal(unqualified.body.error?.code, 'NOT_QUALIFIED', 'the hook is back');
  });

  it('after Redis lost its data, the line comes back as its buyers poll, each ticket in its place and once', async () => {
    const sku = await lineBeforeOpening('lostline');
    const people = await buyers(uid('ll'), 6);
    const tickets: string[] = [];
    for (const p of people) tickets.push((await join(api, sku, p.jwt)).body.ticket);
    const positions = async (who: typeof people, held: string[]) =>
      Promise.all(who.map(async (p, i) => (await poll(api, sku, p.jwt, held[i]!)).body.position));
    const before = await positions(people, tickets);
    assert.deepEqual([...before].sort(), [1, 2, 3, 4, 5, 6]);

    const [first, ...rest] = people;
    const [id, place, epoch, signature] = tickets[0]!.split('~') as [
      string,
      string,
      string,
      string,
    ];
    assert.equal(place.startsWith('-'), true, 'a drawn place before the opening');
    // While Redis knows the ticket its id answers, whatever the rest says.
    const movedEarly = await poll(api, sku, first!.jwt, `${id}~-1~${epoch}~${signature}`);
    assert.equal(movedEarly.body.position, before[0]);

    await api.engine.redis.flushall();
    // A ticket without its signature, or whose place was changed, is not taken back.
    const bare = await until(
      'the SKU rebuilt',
      async () => {
        const r = await poll(api, sku, first!.jwt, id);
        return r.status === 503 ? undefined : r;
      },
      30_000,
      200,
    );
    assert.equal(bare.body.error?.code, 'TICKET_NOT_FOUND', JSON.stringify(bare.body));
    const moved = await poll(api, sku, first!.jwt, `${id}~-1~${epoch}~${signature}`);
    assert.equal(moved.body.error?.code, 'TICKET_NOT_FOUND');
    // Each buyer's poll puts their ticket back; the line's order is the one before.
    for (const [i, p] of people.entries()) {
      const r = await poll(api, sku, p.jwt, tickets[i]!);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.ticket, tickets[i]);
      // Every key of the line it wrote lives until the queue's deadline, from the first.
      const q = api.engine.keys.queue(sku);
      for (const key of [q.waiting, q.tickets, q.buyers, q.state])
        assert.ok(
          (await api.engine.redis.pttl(key)) > 0,
          `${key} has no expiry after restore ${i}`,
        );
    }
    assert.deepEqual(await positions(people, tickets), before);
    // Counted, so an operator sees the line come back (and polls of restored tickets are not).
    const restored = `flashsale_queue_tickets_restored_total{sku="${sku}"}`;
    assert.equal(await metric(api, restored), people.length);

    // Once only: a ticket put back and then forgotten (as a lapsed admission is) stays gone.
    await forget(sku, first!.id, id);
    assert.equal((await poll(api, sku, first!.jwt, tickets[0]!)).status, 404);
    // A ticket of the queue as it is now, forgotten, is not taken back either.
    const [late] = await buyers(uid('ll2'), 1);
    const lateTicket = (await join(api, sku, late!.jwt)).body.ticket;
    await forget(sku, late!.id, lateTicket);
    assert.equal((await poll(api, sku, late!.jwt, lateTicket)).status, 404);
    assert.deepEqual(
      (await positions(rest, tickets.slice(1))).sort(),
      [1, 2, 3, 4, 5],
      'the others keep their order',
    );
    // Nor once the queue's keys expired after a quiet day: the epoch is the SKU's.
    const q = api.engine.keys.queue(sku);
    await api.engine.redis.del(q.waiting, q.admitted, q.tickets, q.buyers, q.state);
    assert.equal((await poll(api, sku, late!.jwt, lateTicket)).status, 404);
    assert.equal(await metric(api, restored), people.length);
  });

  it("a repair keeps the waiting room's epoch: a forgotten ticket does not come back after it", async () => {
    const sku = await lineBeforeOpening('repairq');
    const [x] = await buyers(uid('rq'), 1);
    const ticket = (await join(api, sku, x!.jwt)).body.ticket;
    await forget(sku, x!.id, ticket);
    const k = api.engine.keys.forSku(sku);
    const epoch = await api.engine.redis.hget(k.sku, 'queueEpoch');
    assert.ok(epoch);
    await api.engine.inventory.repair(sku);
    assert.equal(await api.engine.redis.hget(k.sku, 'queueEpoch'), epoch);
    assert.equal((await poll(api, sku, x!.jwt, ticket)).status, 404);
  });

  it('after Redis lost its data, a buyer takes back one ticket, their own, and none while holding another', async () => {
    const sku = await lineBeforeOpening('onlyone');
    const otherSku = await lineBeforeOpening('onlyone2');
    const [x, y, z] = await buyers(uid('oo'), 3);
    // x's first ticket forgotten (as a lapsed admission is), then a second one.
    const t1 = (await join(api, sku, x!.jwt)).body.ticket;
    await forget(sku, x!.id, t1);
    const t2 = (await join(api, sku, x!.jwt)).body.ticket;
    assert.notEqual(t2, t1);
    const ty = (await join(api, sku, y!.jwt)).body.ticket;
    await join(api, otherSku, x!.jwt);

    await api.engine.redis.flushall();
    for (const s of [sku, otherSku])
      await until(
        'the SKU rebuilt',
        async () =>
          (await poll(api, s, z!.jwt, 'A'.repeat(22))).status === 503 ? undefined : true,
        30_000,
        200,
      );
    // Another buyer cannot take x's place, nor x take it on another SKU.
    assert.equal((await poll(api, sku, z!.jwt, t1)).status, 404);
    assert.equal((await poll(api, otherSku, x!.jwt, t2)).status, 404);
    // y joined again before polling: y holds a ticket, so the old one stays gone.
    assert.equal((await join(api, sku, y!.jwt)).status, 202);
    assert.equal((await poll(api, sku, y!.jwt, ty)).status, 404);
    // x takes back one ticket, and then not the other.
    assert.equal((await poll(api, sku, x!.jwt, t2)).status, 200);
    await forget(sku, x!.id, t2);
    assert.equal((await poll(api, sku, x!.jwt, t1)).status, 404);
  });

  it('after Redis lost its data, admitted passes still buy, and stock still bounds the sale', async () => {
    const sku = uid('lostpass');
    const stock = 3;
    await createSku(api, {
      sku,
      stock,
      perUserLimit: 1,
      waitingRoom: { admissionsPerUnitLeft: 1 },
    });
    const people = await buyers(uid('lp'), 5);
    const tickets: string[] = [];
    for (const p of people) tickets.push((await join(api, sku, p.jwt)).body.ticket);
    // One admission per unit left: three admitted, two waiting.
    const views = await until(
      'three admitted',
      async () => {
        const v = await Promise.all(people.map((p, i) => poll(api, sku, p.jwt, tickets[i]!)));
        return v.filter((x) => x.body.status === 'admitted').length === stock ? v : undefined;
      },
      15_000,
      100,
    );
    const admitted = people.flatMap((p, i) =>
      views[i]!.body.status === 'admitted' ? [{ ...p, pass: views[i]!.body.admissionToken! }] : [],
    );
    const waiting = people.flatMap((p, i) =>
      views[i]!.body.status === 'waiting' ? [{ ...p, ticket: tickets[i]! }] : [],
    );
    assert.equal(waiting.length, people.length - stock);

    await api.engine.redis.flushall();
    // An Admission-Token is signed, not stored: it buys once the SKU is rebuilt.
    for (const a of admitted) {
      const bought = await until(
        'the SKU rebuilt',
        async () => {
          const r = await buy(api, sku, a.jwt, `${a.id}-k`, 1, { 'admission-token': a.pass });
          return r.status === 503 ? undefined : r;
        },
        30_000,
        200,
      );
      assert.equal(bought.status, 201, JSON.stringify(bought.body));
    }
    // Sold out: a waiting ticket comes back closed, and nothing more sells.
    for (const w of waiting) {
      const polled = await poll(api, sku, w.jwt, w.ticket);
      assert.equal(polled.body.status, 'closed', JSON.stringify(polled.body));
      const again = await join(api, sku, w.jwt);
      assert.equal(again.body.error?.code, 'QUEUE_CLOSED', JSON.stringify(again.body));
      const refused = await buy(api, sku, w.jwt, `${w.id}-k`);
      assert.equal(refused.body.error?.code, 'SOLD_OUT');
    }
    const k = api.engine.keys.forSku(sku);
    assert.equal(await api.engine.redis.hget(k.sku, 'available'), '0');
  });
});

describe('waiting room: the per-address limit', () => {
  let api: RunningApi;
  before(async () => {
    // Buyers are not limited here; their address is, behind one trusted proxy.
    api = await startApi({
      RATE_LIMIT_BUYER_PER_S: '1000',
      RATE_LIMIT_BUYER_BURST: '1000',
      RATE_LIMIT_CLIENT_PER_S: '1',
      RATE_LIMIT_CLIENT_BURST: '5',
      TRUSTED_PROXY_HOPS: '1',
    });
  });
  after(() => api?.stop());

  it('limits the joins and polls of many buyers behind one address, writes nothing for them, and spares other addresses', async () => {
    const sku = uid('addrq');
    await createSku(api, {
      sku,
      stock: 100,
      perUserLimit: 1,
      waitingRoom: { admissionsPerSecond: 0.001 },
    });
    // One bot address with many accounts; what the client prepends is never believed.
    const from = (address: string, prepended = '10.0.0.1') => ({
      'x-forwarded-for': `${prepended}, ${address}`,
    });
    const bot = '203.0.113.7';
    const accounts = await buyers(uid('bot'), 20);
    const joins = await Promise.all(
      accounts.map((b, i) =>
        call<Ticket>(api, 'POST', `/v1/skus/${sku}/queue`, {
          ...bearer(b.jwt),
          ...from(bot, `10.0.0.${i}`),
        }),
      ),
    );
    const joined = joins.filter((j) => j.status === 202);
    const limited = joins.filter((j) => j.status === 429);
    assert.equal(joined.length + limited.length, accounts.length);
    assert.ok(joined.length >= 5 && joined.length <= 7, `${joined.length} joined from one address`);
    for (const l of limited) {
      assert.equal(l.body.error?.code, 'RATE_LIMITED');
      assert.ok(Number(l.headers.get('retry-after')) >= 1);
    }
    // A limited join wrote nothing: the line holds only the tickets that were answered.
    const q = api.engine.keys.queue(sku);
    assert.equal(await api.engine.redis.zcard(q.waiting), joined.length);
    const ticketOf = await Promise.all(accounts.map((b) => api.engine.redis.hget(q.buyers, b.id)));
    assert.equal(ticketOf.filter((t) => t !== null).length, joined.length);

    // Polls count against the same address; the same buyer elsewhere is answered.
    const first = accounts[joins.findIndex((j) => j.status === 202)]!;
    const ticket = joined[0]!.body.ticket;
    const path = `/v1/skus/${sku}/queue/${ticket}`;
    const polledFromBot = await call<Ticket>(api, 'GET', path, {
      ...bearer(first.jwt),
      ...from(bot),
    });
    assert.equal(polledFromBot.status, 429);
    assert.equal(polledFromBot.body.error?.code, 'RATE_LIMITED');
    const polledElsewhere = await call<Ticket>(api, 'GET', path, {
      ...bearer(first.jwt),
      ...from('198.51.100.9'),
    });
    assert.equal(polledElsewhere.status, 200, JSON.stringify(polledElsewhere.body));
    const elsewhere = await call<Ticket>(api, 'POST', `/v1/skus/${sku}/queue`, {
      ...bearer(accounts[joins.findIndex((j) => j.status === 429)]!.jwt),
      ...from('198.51.100.9'),
    });
    assert.equal(elsewhere.status, 202, JSON.stringify(elsewhere.body));
  });
});
