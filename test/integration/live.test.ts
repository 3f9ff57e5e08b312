// The live sale view during a small sale on two API processes (this one and a child): the
// figures match what was bought and refused, summed over both processes; the rate rises
// while a sale runs and falls back after; admin credentials are required; the event stream
// sends snapshots and gives its slot back when the client goes; the per-SKU gauges agree.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MAX_LIVE_STREAMS } from '../../src/http/live-routes.js';
import type { LiveSku, LiveSnapshot } from '../../src/live/snapshot.js';
import { buy, createSku, startEngine, token, uid, until, type RunningApi } from '../helpers.js';
import { spawnRoles, stopProc, type Proc } from '../support/processes.js';

const SNAPSHOT_KEYS = ['at', 'incidents', 'pipeline', 'skus'];
const SKU_KEYS = [
  'available',
  'endsAt',
  'expiringNext60s',
  'name',
  'paused',
  'refusals',
  'sku',
  'soldPerSecond',
  'startsAt',
  'supplied',
  'unitsReserved',
];

describe('live sale view', () => {
  let api: RunningApi;
  let other: Proc;
  /** The second API process, as far as buy() needs. */
  let api2: RunningApi;

  before(async () => {
    api = await startEngine(['writer', 'relay', 'api']);
    other = spawnRoles('live-api-2', ['api']);
    api2 = { ...api, url: await other.url };
  });
  after(async () => {
    if (other) await stopProc(other);
    await api?.stop();
  });

  const live = async (url: string, skus: string[]): Promise<LiveSnapshot> => {
    const res = await fetch(`${url}/v1/admin/live?sku=${skus.join(',')}`, { headers: api.admin });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as LiveSnapshot;
  };
  const skuOf = (snap: LiveSnapshot, sku: string): LiveSku => {
    const s = snap.skus.find((x) => x.sku === sku);
    assert.ok(s, `${sku} is in the view`);
    return s;
  };

  it('requires the admin token; the page itself needs none', async () => {
    const buyer = await token('live-buyer');
    for (const path of ['/v1/admin/live', '/v1/admin/live/events']) {
      const none = await fetch(`${api.url}${path}`);
      assert.equal(none.status, 401, path);
      assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
      const asBuyer = await fetch(`${api.url}${path}`, {
        headers: { authorization: `Bearer ${buyer}` },
      });
      assert.equal(asBuyer.status, 403, path);
    }
    const bad = await fetch(`${api.url}/v1/admin/live?sku=a,b%7Bc`, { headers: api.admin });
    assert.equal(bad.status, 400);
    const page = await fetch(`${api.url}/admin/live`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'sha256-/);
    assert.match(await page.text(), /\/v1\/admin\/live\/events/);
  });

  it('counts what was bought and refused, by reason, over both API processes', async () => {
    const sold = uid('live-sold');
    const later = uid('live-later');
    const startsAt = new Date(Date.now() + 3_600_000).toISOString();
    await createSku(api, { sku: sold, stock: 10, perUserLimit: 2, reservationTtlSeconds: 30 });
    await createSku(api, { sku: later, stock: 5, perUserLimit: 5, startsAt });

    const expect = async (
      res: Promise<{ status: number; body: any }>,
      status: number,
      code?: string,
    ) => {
      const r = await res;
      assert.equal(r.status, status, JSON.stringify(r.body));
      if (code) assert.equal(r.body.error.code, code);
    };
    const users = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => token(`live-u${i}`)));
    // Both processes sell: 5 orders of 2 units, one refused over the limit, two sold out.
    await expect(buy(api, sold, users[0]!, uid('k'), 2), 201);
    await expect(buy(api2, sold, users[0]!, uid('k'), 1), 409, 'LIMIT_EXCEEDED');
    for (let i = 1; i < 5; i++)
      await expect(buy(i % 2 ? api2 : api, sold, users[i]!, uid('k'), 2), 201);
    await expect(buy(api, sold, users[5]!, uid('k'), 1), 409, 'SOLD_OUT');
    await expect(buy(api2, sold, users[5]!, uid('k'), 1), 409, 'SOLD_OUT');
    for (const via of [api, api2, api2])
      await expect(buy(via, later, users[0]!, uid('k'), 1), 409, 'SALE_NOT_ACTIVE');

    // Each process publishes about once a second, and may have published between two of
    // the requests above: wait until both have published the last of them.
    const snap = await until(
      'both processes’ counters in the view',
      async () => {
        const s = await live(api.url, [sold, later]);
        const a = skuOf(s, sold);
        const b = skuOf(s, later);
        return a.unitsReserved === 10 &&
          a.refusals?.SOLD_OUT === 2 &&
          b.refusals?.SALE_NOT_ACTIVE === 3
          ? s
          : undefined;
      },
      10_000,
      200,
    );
    assert.deepEqual(Object.keys(snap).sort(), SNAPSHOT_KEYS);
    assert.ok(Math.abs(Date.parse(snap.at) - Date.now()) < 5_000, 'at is now');
    const a = skuOf(snap, sold);
    assert.deepEqual(Object.keys(a).sort(), SKU_KEYS);
    assert.deepEqual(
      { ...a, soldPerSecond: typeof a.soldPerSecond },
      {
        sku: sold,
        name: sold,
        supplied: 10,
        available: 0,
        paused: false,
        startsAt: null,
        endsAt: null,
        soldPerSecond: 'number',
        unitsReserved: 10,
        refusals: { LIMIT_EXCEEDED: 1, SOLD_OUT: 2 },
        expiringNext60s: 5,
      },
    );
    assert.deepEqual(skuOf(snap, later), {
      sku: later,
      name: later,
      supplied: 5,
      available: 5,
      paused: false,
      startsAt,
      endsAt: null,
      soldPerSecond: 0,
      unitsReserved: 0,
      refusals: { SALE_NOT_ACTIVE: 3 },
      expiringNext60s: 0,
    });
    assert.equal(typeof snap.incidents.open, 'number');
    assert.equal(typeof snap.pipeline.streamEntries, 'number');
    assert.equal(typeof snap.pipeline.relayLagSeconds, 'number');
    // Kafka's lag is read in the background: a view soon has it.
    await until(
      'the consumer lag',
      async () => ((await live(api.url, [sold])).pipeline.consumerLag ?? undefined) as number,
      15_000,
      300,
    );

    // The other process sees the same sums.
    const seen = skuOf(await live(api2.url, [sold]), sold);
    assert.equal(seen.unitsReserved, 10);
    assert.deepEqual(seen.refusals, { LIMIT_EXCEEDED: 1, SOLD_OUT: 2 });

    // Default view (no ?sku=): the newest SKUs, these two among them.
    const all = await live(api.url, []);
    assert.ok(all.skus.some((s) => s.sku === sold) && all.skus.some((s) => s.sku === later));

    // The gauges read the same view.
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`^flashsale_sku_available\\{sku="${sold}"\\} 0$`, 'm'));
    assert.match(metrics, new RegExp(`^flashsale_sku_supplied\\{sku="${sold}"\\} 10$`, 'm'));
    assert.match(
      metrics,
      new RegExp(`^flashsale_reservations_expiring\\{sku="${sold}"\\} 5$`, 'm'),
    );
    assert.match(
      metrics,
      new RegExp(`^flashsale_reservations_expiring\\{sku="${later}"\\} 0$`, 'm'),
    );
  });

  it('units sold per second rise while a sale runs and fall back to zero after', async () => {
    const sku = uid('live-rate');
    await createSku(api, { sku, stock: 100_000, perUserLimit: 1000 });
    const jwt = await token('live-rate-buyer');
    let selling = true;
    const sale = (async () => {
      let i = 0;
      while (selling) {
        assert.equal((await buy(i % 2 ? api2 : api, sku, jwt, uid('k'))).status, 201);
        i++;
        await sleep(10);
      }
      return i;
    })();
    try {
      const rate = await until(
        'a rate above zero',
        async () => {
          const r = skuOf(await live(api.url, [sku]), sku).soldPerSecond;
          return r !== null && r > 0 ? r : undefined;
        },
        10_000,
        200,
      );
      assert.ok(rate < 1000, `a plausible rate: ${rate}`);
    } finally {
      selling = false;
    }
    const bought = await sale;
    const after = await until(
      'the rate back to zero, every unit counted',
      async () => {
        const s = skuOf(await live(api.url, [sku]), sku);
        return s.soldPerSecond === 0 && s.unitsReserved === bought ? s : undefined;
      },
      10_000,
      200,
    );
    assert.equal(after.available, 100_000 - bought);
  });

  it('streams snapshots as server-sent events, and frees the stream when the client goes', async () => {
    const sku = uid('live-sse');
    await createSku(api, { sku, stock: 7, perUserLimit: 1 });
    const ctl = new AbortController();
    const res = await fetch(`${api.url}/v1/admin/live/events?sku=${sku}`, {
      headers: api.admin,
      signal: ctl.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    const events: { event: string; data: LiveSnapshot }[] = [];
    const started = Date.now();
    while (events.length < 3) {
      const { value, done } = await reader.read();
      assert.ok(!done, 'the stream stays open');
      buffer += value;
      for (let end; (end = buffer.indexOf('\n\n')) >= 0; buffer = buffer.slice(end + 2)) {
        const frame = buffer.slice(0, end);
        const event = /^event: (.+)$/m.exec(frame)?.[1] ?? '';
        const data = /^data: (.+)$/m.exec(frame)?.[1] ?? 'null';
        events.push({ event, data: JSON.parse(data) as LiveSnapshot });
      }
    }
    const elapsed = Date.now() - started;
    ctl.abort();
    assert.deepEqual(
      events.map((e) => e.event),
      ['snapshot', 'snapshot', 'snapshot'],
    );
    assert.ok(elapsed >= 1_500 && elapsed < 6_000, `about one a second (${elapsed} ms for 3)`);
    for (const e of events) assert.equal(skuOf(e.data, sku).available, 7);
    assert.ok(Date.parse(events[2]!.data.at) > Date.parse(events[0]!.data.at), 'fresh each time');

    // The streams are bounded; one the client left is given back.
    const open = async () => {
      const c = new AbortController();
      const r = await fetch(`${api.url}/v1/admin/live/events?sku=${sku}`, {
        headers: api.admin,
        signal: c.signal,
      });
      return { status: r.status, close: () => c.abort() };
    };
    const streams = await until(
      'the aborted stream to be released',
      async () => {
        const all = [];
        for (let i = 0; i < MAX_LIVE_STREAMS; i++) all.push(await open());
        if (all.every((s) => s.status === 200)) return all;
        for (const s of all) s.close();
        return undefined;
      },
      5_000,
      200,
    );
    const refused = await fetch(`${api.url}/v1/admin/live/events`, { headers: api.admin });
    assert.equal(refused.status, 503);
    assert.ok(refused.headers.get('retry-after'));
    for (const s of streams) s.close();
    const again = await until(
      'a slot once the clients went',
      async () => {
        const s = await open();
        if (s.status === 200) return s;
        s.close();
        return undefined;
      },
      5_000,
      100,
    );
    again.close();
  });
});
