// Redis unreachable mid-load, against a redis-server of this test's own (AOF, fsync always)
// and engine processes started the way an operator starts them: the server hung
// (SIGSTOP) for 10 s, then killed and restarted on the same data. Purchases must answer
// 503 SERVICE_UNAVAILABLE with Retry-After within about a second while it is away, the
// engine must recover by itself when it returns, and SIGTERM must stop an engine process
// promptly while its Redis hangs. At the end both stores hold every acknowledged order once.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startEngine, token, uid, waitForDrain } from '../helpers.js';

const mainJs = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const logDir = join('.services', 'test-logs');
mkdirSync(logDir, { recursive: true });
const children = new Set<ChildProcess>();
const killAll = () => {
  for (const c of children) {
    try {
      if (c.pid) process.kill(-c.pid, 'SIGCONT');
    } catch {
      // already gone
    }
    c.kill('SIGKILL');
  }
  children.clear();
};
process.on('exit', killAll);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function exitOf(child: ChildProcess): Promise<NodeJS.Signals | number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve(child.signalCode ?? child.exitCode);
      return;
    }
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(signal ?? code);
    });
  });
}

/** A redis-server of our own, detached, its data in `dir`, durable with AOF fsync always. */
class OwnRedis {
  child: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--save',
        '',
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
      ],
      { detached: true, stdio: 'ignore' },
    );
    children.add(child);
    this.child = child;
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    try {
      for (let i = 0; i < 100; i++) {
        try {
          if ((await probe.ping()) === 'PONG') return;
        } catch {
          await sleep(100);
        }
      }
      throw new Error(`redis-server on ${this.port} did not answer`);
    } finally {
      probe.disconnect();
    }
  }

  signal(sig: NodeJS.Signals): void {
    if (this.child?.pid) process.kill(this.child.pid, sig);
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    try {
      if (child.pid) process.kill(child.pid, 'SIGCONT');
    } catch {
      // already gone
    }
    child.kill('SIGKILL');
    await exitOf(child);
    children.delete(child);
  }
}

interface Proc {
  child: ChildProcess;
  url: Promise<string>;
  exited: Promise<NodeJS.Signals | number | null>;
}

/** `node src/main.js <roles>` in its own process group, its log in a file. */
function spawnRoles(name: string, roles: string[], env: Record<string, string>): Proc {
  const child = spawn(process.execPath, [mainJs, ...roles], {
    env: { ...process.env, LOG_LEVEL: 'info', PORT: '0', SWEEP_INTERVAL_MS: '200', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  children.add(child);
  const log = createWriteStream(join(logDir, `redis-outage-${name}.log`), { flags: 'a' });
  child.stderr!.pipe(log);
  const lines = createInterface({ input: child.stdout! });
  const url = new Promise<string>((resolve) => {
    lines.on('line', (line) => {
      log.write(line + '\n');
      const m = /"listening":"(http:\/\/[^"]+)"/.exec(line);
      if (m?.[1]) resolve(m[1]);
    });
  });
  return { child, url, exited: exitOf(child) };
}

/** Halts every supervisor, so that killing the children does not start new ones. */
const halts = new Set<() => void>();

/** Restarts a role process whenever it exits (as a supervisor would) until stopped. */
function supervise(name: string, roles: string[], env: Record<string, string>) {
  let stopped = false;
  halts.add(() => (stopped = true));
  let n = 0;
  let current = spawnRoles(`${name}-${n}`, roles, env);
  const watch = (p: Proc) =>
    void p.exited.then(() => {
      if (stopped) return;
      n += 1;
      current = spawnRoles(`${name}-${n}`, roles, env);
      watch(current);
    });
  watch(current);
  return {
    get proc() {
      return current;
    },
    async stop() {
      stopped = true;
      current.child.kill('SIGTERM');
      await current.exited;
    },
  };
}

interface Answer {
  at: number;
  ms: number;
  status: number;
  code?: string;
  retryAfter: string | null;
}

/**
 * Buyers in a loop until stopped: each purchase gets a fresh Idempotency-Key; a 503 or a
 * lost answer is retried with the same key, as a client would, until it gets an answer.
 */
function startLoad(apiUrl: () => Promise<string>, skus: string[]) {
  const answers: Answer[] = [];
  const accepted = new Map<string, string>(); // orderId -> sku
  let stopped = false;
  const buyers = 40;
  const run = async (b: number) => {
    const jwts = await Promise.all(Array.from({ length: 8 }, (_, i) => token(`ro${b}x${i}`)));
    for (let n = 0; !stopped; n++) {
      const sku = skus[(b + n) % skus.length]!;
      const jwt = jwts[n % jwts.length]!;
      const key = `k-${b}-${n}`;
      for (;;) {
        const t0 = Date.now();
        try {
          const res = await fetch(`${await apiUrl()}/v1/skus/${sku}/purchases`, {
            method: 'POST',
            headers: {
              authorization: `Bearer ${jwt}`,
              'idempotency-key': key,
              'content-type': 'application/json',
            },
            body: '{"quantity":1}',
            signal: AbortSignal.timeout(20_000),
          });
          const body = (await res.json()) as { orderId?: string; error?: { code: string } };
          answers.push({
            at: t0,
            ms: Date.now() - t0,
            status: res.status,
            ...(body.error ? { code: body.error.code } : {}),
            retryAfter: res.headers.get('retry-after'),
          });
          if (res.status === 201 && body.orderId) accepted.set(body.orderId, sku);
          if (res.status < 500) break;
        } catch {
          answers.push({ at: t0, ms: Date.now() - t0, status: 0, retryAfter: null });
        }
        if (stopped) return;
        await sleep(100);
      }
    }
  };
  const done = Promise.all(Array.from({ length: buyers }, (_, b) => run(b)));
  return {
    answers,
    accepted,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

/** Answers to purchases sent while Redis was away (skipping the ones already in flight). */
function duringOutage(answers: Answer[], from: number, to: number): Answer[] {
  return answers.filter((a) => a.at >= from + 200 && a.at < to - 1600);
}

function assertFastUnavailable(outage: Answer[], what: string): number {
  assert.ok(
    outage.length >= 20,
    `${what}: ${outage.length} purchases sent and answered during the outage (none: buyers stuck waiting)`,
  );
  const slow = outage.filter((a) => a.ms > 1500);
  const wrong = outage.filter(
    (a) => a.status !== 503 || a.code !== 'SERVICE_UNAVAILABLE' || a.retryAfter === null,
  );
  assert.deepEqual(wrong.slice(0, 3), [], `${what}: every purchase answered 503 with Retry-After`);
  assert.deepEqual(slow.slice(0, 3), [], `${what}: each answered within 1.5 s`);
  return Math.max(...outage.map((a) => a.ms));
}

async function readyz(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.text() };
}

/** The test's own client fails fast too while it reconnects: ask until Redis answers. */
async function untilAnswered<T>(fn: () => Promise<T>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

async function waitForCreated(answers: Answer[], since: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (answers.some((a) => a.at >= since && a.status === 201)) return;
    await sleep(100);
  }
  assert.fail(`no purchase succeeded within ${timeoutMs} ms after Redis came back`);
}

describe('Redis unreachable mid-load (own redis-server, AOF always)', { timeout: 600_000 }, () => {
  let dir: string;
  let redis: OwnRedis;
  let reader: Awaited<ReturnType<typeof startEngine>> | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'redis-outage-'));
    redis = new OwnRedis(await freePort(), dir);
    await redis.start();
  });
  after(async () => {
    for (const halt of halts) halt();
    killAll();
    await reader?.stop().catch(() => undefined);
    await redis.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 fast while Redis hangs or is down, recovers by itself, stops promptly on SIGTERM, loses nothing', async (t) => {
    const env = { REDIS_URL: redis.url };
    reader = await startEngine([], env);
    const skus = Array.from({ length: 4 }, () => uid('outage'));
    for (const sku of skus)
      await reader.engine.inventory.createSku({ sku, name: sku, stock: 20000, perUserLimit: 1000 });
    const shortTtl = uid('outage-ttl');
    await reader.engine.inventory.createSku({
      sku: shortTtl,
      name: shortTtl,
      stock: 10,
      perUserLimit: 1,
      reservationTtlSeconds: 1,
    });

    const api = spawnRoles('api', ['api', 'sweeper'], env);
    const pipeline = spawnRoles('pipeline', ['relay', 'writer'], env);
    let restarted: { api: ReturnType<typeof supervise>; pipeline: ReturnType<typeof supervise> };
    let currentUrl = () => api.url;
    const apiUrl = await api.url;
    const load = startLoad(() => currentUrl(), skus);
    try {
      await sleep(2000);
      assert.ok(load.accepted.size > 0, 'purchases succeed before the outage');

      // (a) Redis hung: the connection stays open, nothing answers.
      const stopAt = Date.now();
      redis.signal('SIGSTOP');
      await sleep(3000);
      const ready = await readyz(apiUrl);
      assert.equal(ready.status, 503, ready.body);
      assert.equal(
        (JSON.parse(ready.body) as { checks: { redis: { status: string } } }).checks.redis.status,
        'down',
      );
      await sleep(7000);
      const contAt = Date.now();
      redis.signal('SIGCONT');
      const maxHung = assertFastUnavailable(
        duringOutage(load.answers, stopAt, contAt),
        'Redis hung',
      );
      t.diagnostic(`Redis hung (SIGSTOP 10 s): slowest 503 took ${maxHung} ms`);
      await waitForCreated(load.answers, contAt, 15_000);

      // (b) Redis down: connections refused, then it restarts on the same data.
      const killAt = Date.now();
      await redis.kill();
      await sleep(5000);
      const backAt = Date.now();
      await redis.start();
      const maxDown = assertFastUnavailable(
        duringOutage(load.answers, killAt, backAt),
        'Redis down',
      );
      t.diagnostic(`Redis down (killed, restarted after 5 s): slowest 503 took ${maxDown} ms`);
      await waitForCreated(load.answers, backAt, 20_000);

      // The same processes resumed every role: the relay and writer carry new events to
      // PostgreSQL, the sweeper expires a reservation made after the outages.
      const seq = Number(
        await untilAnswered(() =>
          reader!.engine.redis.hget(reader!.engine.keys.forSku(skus[0]!).sku, 'seq'),
        ),
      );
      const jwt = await token(uid('u'));
      const res = await fetch(`${apiUrl}/v1/skus/${shortTtl}/purchases`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${jwt}`,
          'idempotency-key': uid('k'),
          'content-type': 'application/json',
        },
        body: '{"quantity":1}',
      });
      const order = (await res.json()) as { orderId: string };
      assert.equal(res.status, 201, JSON.stringify(order));
      const deadline = Date.now() + 30_000;
      let applied = 0;
      let status = '';
      while (Date.now() < deadline && (applied < seq || status !== 'expired')) {
        const row = await reader.engine.db.sku.findUnique({ where: { id: skus[0]! } });
        applied = row?.lastSequence ?? 0;
        const o = await fetch(`${apiUrl}/v1/orders/${order.orderId}`, {
          headers: { authorization: `Bearer ${jwt}` },
        });
        status = ((await o.json()) as { status: string }).status;
        await sleep(200);
      }
      assert.ok(applied >= seq, `PostgreSQL reached sequence ${seq} of ${skus[0]} (at ${applied})`);
      assert.equal(status, 'expired', 'the sweeper expired a 1 s reservation after the outages');

      // (c) SIGTERM while Redis hangs: every engine process exits promptly.
      redis.signal('SIGSTOP');
      await sleep(1500);
      const termAt = Date.now();
      api.child.kill('SIGTERM');
      pipeline.child.kill('SIGTERM');
      const [apiExit, pipelineExit] = await Promise.all([
        api.exited.then((how) => ({ how, ms: Date.now() - termAt })),
        pipeline.exited.then((how) => ({ how, ms: Date.now() - termAt })),
      ]);
      redis.signal('SIGCONT');
      t.diagnostic(
        `SIGTERM with Redis hung: api exited in ${apiExit.ms} ms (${String(apiExit.how)}), ` +
          `relay+writer in ${pipelineExit.ms} ms (${String(pipelineExit.how)})`,
      );
      assert.ok(apiExit.ms < 5000, `api exited within 5 s (took ${apiExit.ms} ms)`);
      assert.ok(pipelineExit.ms < 5000, `relay+writer exited within 5 s (${pipelineExit.ms} ms)`);

      // Restart them (as a supervisor would) so the load ends and the pipeline drains.
      restarted = {
        api: supervise('api-2', ['api', 'sweeper'], env),
        pipeline: supervise('pipeline-2', ['relay', 'writer'], env),
      };
      currentUrl = () => restarted.api.proc.url;
      await currentUrl();
      await sleep(2000);
    } finally {
      await load.stop();
    }

    t.diagnostic(
      `${load.accepted.size} purchases acknowledged, ` +
        `${load.answers.filter((a) => a.status === 503).length} answered 503`,
    );
    // Invariants, both stores: every 201 in PostgreSQL once, stock and sequence equal.
    const { engine } = reader;
    await untilAnswered(() => engine.redis.ping());
    const compared = await waitForDrain(engine, [...skus, shortTtl], 120_000);
    for (const c of compared) {
      assert.deepEqual(
        { available: c.db.available, supplied: c.db.supplied, sequence: c.db.sequence },
        c.redis,
        `${c.sku}: Redis and PostgreSQL agree`,
      );
      assert.equal(c.conservationGap, 0, `${c.sku}: conservation in PostgreSQL`);
      assert.ok(c.db.available >= 0, `${c.sku}: no oversell`);
    }
    const rows = await reader.engine.db.order.findMany({
      where: { skuId: { in: skus } },
      select: { id: true, skuId: true },
    });
    const inDb = new Map(rows.map((r) => [r.id, r.skuId]));
    assert.equal(inDb.size, rows.length, 'no order twice');
    for (const [id, sku] of load.accepted)
      assert.equal(inDb.get(id), sku, `order ${id} in PostgreSQL`);
    for (const sku of skus) {
      const sold = rows.filter((r) => r.skuId === sku).length;
      assert.ok(sold <= 20000, `${sku}: ${sold} sold of 20000`);
    }
    await Promise.all([restarted.api.stop(), restarted.pipeline.stop()]);
  });
});
