// A backing service that cannot be reached answers 503 SERVICE_UNAVAILABLE with
// Retry-After, fast, on every route that needs it; /readyz names only which service is up
// or down (the reasons go to the log); a /metrics scrape never waits on a dead broker and
// reads the stream lengths once per refresh, however often it is scraped.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createSku, scanKeys, startApi, token, uid, until, type RunningApi } from '../helpers.js';
import { freePort, movableAddress, ownRedis, type OwnRedis } from '../support/redis-server.js';

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = Date.now();
  const value = await fn();
  return { ms: Date.now() - t0, value };
}

async function purchase(api: RunningApi, sku: string) {
  const res = await fetch(`${api.url}/v1/skus/${sku}/purchases`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${await token(uid('u'))}`,
      'idempotency-key': uid('k'),
      'content-type': 'application/json',
    },
    body: '{"quantity":1}',
    signal: AbortSignal.timeout(30_000),
  });
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    body: (await res.json()) as { error?: { code: string; message: string } },
  };
}

describe('backing services unreachable', { timeout: 120_000 }, () => {
  let deadPort: number;
  before(async () => {
    deadPort = await freePort(); // nothing listens there: connections are refused
  });

  it('a purchase answers 503 SERVICE_UNAVAILABLE with Retry-After within 2 s when Redis refuses connections', async () => {
    const api = await startApi({ REDIS_URL: `redis://127.0.0.1:${deadPort}` });
    try {
      for (let i = 0; i < 3; i++) {
        const { ms, value } = await timed(() => purchase(api, uid('sku')));
        assert.equal(value.status, 503, JSON.stringify(value.body));
        assert.equal(value.body.error?.code, 'SERVICE_UNAVAILABLE');
        assert.ok(value.retryAfter, 'Retry-After header');
        assert.doesNotMatch(JSON.stringify(value.body), /ECONNREFUSED|127\.0\.0\.1|redis/i);
        assert.ok(ms < 2000, `answered in ${ms} ms`);
      }
    } finally {
      await api.stop();
    }
  });

  it('an admin route that needs PostgreSQL answers 503 SERVICE_UNAVAILABLE within 2 s when PostgreSQL refuses connections', async () => {
    const api = await startApi({ DATABASE_URL: `postgresql://postgres@127.0.0.1:${deadPort}/x` });
    try {
      const { ms, value: res } = await timed(() =>
        fetch(`${api.url}/v1/admin/skus`, {
          method: 'POST',
          headers: api.admin,
          body: JSON.stringify({ sku: uid('pg'), name: 'x', stock: 5, perUserLimit: 1 }),
          signal: AbortSignal.timeout(30_000),
        }),
      );
      const body = await res.text();
      assert.equal(res.status, 503, body);
      assert.equal(
        (JSON.parse(body) as { error: { code: string } }).error.code,
        'SERVICE_UNAVAILABLE',
      );
      assert.ok(res.headers.get('retry-after'), 'Retry-After header');
      assert.doesNotMatch(body, /ECONNREFUSED|127\.0\.0\.1|postgres/i);
      assert.ok(ms < 2000, `answered in ${ms} ms`);
    } finally {
      await api.stop();
    }
  });

  it('/readyz says which service is down and nothing else: no error text, no address', async () => {
    const api = await startApi({
      REDIS_URL: `redis://127.0.0.1:${deadPort}`,
      KAFKA_BROKERS: `127.0.0.1:${deadPort}`,
    });
    try {
      const res = await fetch(`${api.url}/readyz`, { signal: AbortSignal.timeout(10_000) });
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(res.status, 503);
      assert.deepEqual(body, {
        status: 'unavailable',
        checks: {
          redis: { status: 'down' },
          postgres: { status: 'up' },
          kafka: { status: 'down' },
        },
      });
    } finally {
      await api.stop();
    }
  });
});

/**
 * The ways a running Redis refuses writes while still answering reads. Redis checks them at
 * a script's first write only (after one, it lets the script finish), so the purchase
 * script meets them where it looks for keys of the wrong type.
 */
const WRITE_REFUSALS: {
  cause: string;
  refuse: (admin: Redis, deadPort: number) => Promise<void>;
  restore: (admin: Redis) => Promise<unknown>;
}[] = [
  {
    cause: 'full (maxmemory reached, noeviction): OOM',
    refuse: async (admin) => {
      await admin.config('SET', 'maxmemory-policy', 'noeviction');
      await admin.config('SET', 'maxmemory', '1');
    },
    restore: (admin) => admin.config('SET', 'maxmemory', '0'),
  },
  {
    cause: 'a read-only replica (a failover demoted it): READONLY',
    refuse: async (admin, deadPort) => {
      await admin.call('REPLICAOF', '127.0.0.1', String(deadPort));
    },
    restore: (admin) => admin.call('REPLICAOF', 'NO', 'ONE'),
  },
  {
    cause: 'unable to persist (its last snapshot failed): MISCONF',
    refuse: async (admin) => {
      // The data folder gone (a lost disk, say): the snapshot fails, and with save points
      // set Redis refuses writes until one succeeds.
      const dir = (await admin.config('GET', 'dir'))[1]!;
      await admin.config('SET', 'save', '3600 1');
      rmSync(dir, { recursive: true, force: true });
      await admin.bgsave();
      for (let i = 0; ; i++) {
        const info = await admin.info('persistence');
        if (/rdb_bgsave_in_progress:0/.test(info) && /rdb_last_bgsave_status:err/.test(info)) break;
        if (i > 100) throw new Error(`the snapshot did not fail: ${info}`);
        await sleep(50);
      }
    },
    restore: (admin) => admin.config('SET', 'save', ''),
  },
];

describe('Redis refusing writes', { timeout: 120_000 }, () => {
  let server: OwnRedis;
  let deadPort: number;
  // Data in a folder of its own, which the MISCONF case removes.
  const dataDir = mkdtempSync(join(tmpdir(), 'flashsale-redis-data-'));
  before(async () => {
    server = await ownRedis(['--dir', dataDir]);
    deadPort = await freePort();
  });
  after(async () => {
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  for (const { cause, refuse, restore } of WRITE_REFUSALS)
    it(`${cause}: a purchase answers 503 SERVICE_UNAVAILABLE with Retry-After and writes nothing, with and without a buyer limit`, async () => {
      const admin = new Redis(server.url);
      // Without a limit the claim is the script's first write; with one, the limit's key.
      const apis = [
        await startApi({ REDIS_URL: server.url, RATE_LIMIT_BUYER_PER_S: '0' }),
        await startApi({ REDIS_URL: server.url, RATE_LIMIT_BUYER_PER_S: '1000' }),
      ];
      try {
        for (const api of apis) {
          const sku = uid('full');
          await createSku(api, { sku, stock: 10, perUserLimit: 10 });
          const before = await admin.hgetall(api.engine.keys.forSku(sku).sku);
          // Every key but the live view's counters (each API process publishes its own).
          const keys = async () =>
            (await scanKeys(admin, 'fs:*')).filter((k) => !k.startsWith('fs:live:')).sort();
          const keysBefore = await keys();
          await refuse(admin, deadPort);
          let r;
          try {
            r = await purchase(api, sku);
          } finally {
            await restore(admin);
          }
          assert.equal(r.status, 503, JSON.stringify(r.body));
          assert.equal(r.body.error?.code, 'SERVICE_UNAVAILABLE');
          assert.equal(r.retryAfter, '1');
          assert.deepEqual(await admin.hgetall(api.engine.keys.forSku(sku).sku), before);
          assert.deepEqual(await keys(), keysBefore, 'no claim, no limit key, no order');
          // And once Redis takes writes again, purchases go through (after READONLY the
          // client reconnects first: until it has, 503).
          await until(
            'a purchase once Redis takes writes',
            async () => ((await purchase(api, sku)).status === 201 ? true : undefined),
            5_000,
            50,
          );
        }
      } finally {
        admin.disconnect();
        for (const api of apis) await api.stop();
      }
    });
});

describe(
  'Redis failed over behind one address, the old primary still up as a replica',
  {
    timeout: 120_000,
  },
  () => {
    it('purchases answer 503 briefly, then go through on the new primary: the engine leaves a server that answers READONLY', async () => {
      const [first, second] = [await ownRedis(), await ownRedis()];
      const address = await movableAddress(first.port);
      const [a, b] = [new Redis(first.url), new Redis(second.url)];
      const api = await startApi({ REDIS_URL: address.url, RATE_LIMIT_BUYER_PER_S: '0' });
      try {
        const sku = uid('failover');
        await createSku(api, { sku, stock: 100, perUserLimit: 100 });
        assert.equal((await purchase(api, sku)).status, 201);
        // The second server copies the first and takes over; the first steps down to follow
        // it (what Sentinel or a managed Redis does), and the address now leads to the second.
        await b.call('REPLICAOF', '127.0.0.1', String(first.port));
        await until(
          'the replica in sync',
          async () =>
            /master_link_status:up/.test(await b.info('replication')) &&
            Number(await a.call('WAIT', '1', '1000')) === 1
              ? true
              : undefined,
          20_000,
          100,
        );
        await b.call('REPLICAOF', 'NO', 'ONE');
        await a.call('REPLICAOF', '127.0.0.1', String(second.port));
        address.moveTo(second.port);
        const statuses: number[] = [];
        await until(
          'a purchase on the new primary',
          async () => {
            const r = await purchase(api, sku);
            statuses.push(r.status);
            return r.status === 201 ? r : undefined;
          },
          10_000,
          100,
        );
        // Until then only 503s, each with nothing written: the old primary refused them.
        assert.ok(
          statuses.slice(0, -1).every((s) => s === 503),
          JSON.stringify(statuses),
        );
        assert.equal(Number(await b.hget(api.engine.keys.forSku(sku).sku, 'available')), 98);
      } finally {
        await api.stop();
        a.disconnect();
        b.disconnect();
        await address.close();
        await first.close();
        await second.close();
      }
    });
  },
);

describe('SIGTERM while backing services hang', { timeout: 120_000 }, () => {
  it('an engine process (api and DB writer) exits within 5 s while PostgreSQL hangs mid-batch and Redis refuses', async (t) => {
    // A "PostgreSQL" that accepts connections and never answers.
    const sockets = new Set<import('node:net').Socket>();
    const hung = createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const hungPort = (hung.address() as { port: number }).port;
    const deadPort = await freePort();
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL('../../src/main.js', import.meta.url)), 'writer', 'api'],
      {
        env: {
          ...process.env,
          LOG_LEVEL: 'warn',
          PORT: '0',
          DATABASE_URL: `postgresql://postgres@127.0.0.1:${hungPort}/x`,
          REDIS_URL: `redis://127.0.0.1:${deadPort}`,
          // Its own group: a writer that cannot write must not take partitions from others.
          KAFKA_WRITER_GROUP: uid('hung-writer'),
        },
        stdio: 'ignore',
        detached: true,
      },
    );
    const exited = new Promise<number>((resolve) => child.once('exit', () => resolve(Date.now())));
    try {
      await sleep(8000); // started, the writer holds a batch it cannot apply
      const termAt = Date.now();
      child.kill('SIGTERM');
      const ms = (await Promise.race([exited, sleep(20_000).then(() => Infinity)])) - termAt;
      t.diagnostic(`exited ${ms} ms after SIGTERM`);
      assert.ok(ms < 5000, `exited ${ms} ms after SIGTERM`);
    } finally {
      child.kill('SIGKILL');
      for (const s of sockets) s.destroy();
      hung.close();
    }
  });
});

describe('/metrics scrape cost', { timeout: 120_000 }, () => {
  let server: OwnRedis;
  before(async () => {
    server = await ownRedis();
  });
  after(() => server.close());

  it('scrapes back to back read each stream length at most once and never wait on a dead broker', async () => {
    const api = await startApi({
      REDIS_URL: server.url,
      KAFKA_BROKERS: `127.0.0.1:${await freePort()}`,
    });
    const stats = new Redis(server.url);
    const xlenCalls = async () => {
      const info = await stats.info('commandstats');
      return Number(/cmdstat_xlen:calls=(\d+)/.exec(info)?.[1] ?? 0);
    };
    try {
      const before = await xlenCalls();
      for (let i = 0; i < 3; i++) {
        const { ms, value } = await timed(async () => {
          const res = await fetch(`${api.url}/metrics`, { signal: AbortSignal.timeout(30_000) });
          return { status: res.status, text: await res.text() };
        });
        assert.equal(value.status, 200);
        assert.match(value.text, /flashsale_stream_length\{partition="0"\} 0/);
        assert.ok(ms < 2000, `scrape ${i} answered in ${ms} ms with the broker unreachable`);
      }
      const calls = (await xlenCalls()) - before;
      assert.ok(calls <= 16, `three scrapes cost ${calls} XLENs (at most one per partition)`);
    } finally {
      stats.disconnect();
      await api.stop();
    }
  });
});
