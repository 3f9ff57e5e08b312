// The engine unchanged against a Redis Cluster: a local 3-master cluster from redis-server
// processes on loopback ports, and the race and convergence scenarios run against it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { KeySpace } from '../../src/shared/keys.js';
import { startApi, startEngine, uid, type RunningApi } from '../helpers.js';
import { convergenceScenario } from '../invariants/convergence-scenario.js';
import { raceScenario } from '../invariants/race-scenario.js';

const PORTS = [7101, 7102, 7103];
const root = join('.services', 'redis-cluster');

function stopNodes(): void {
  for (const port of PORTS) {
    const pidFile = join(root, String(port), 'redis.pid');
    if (!existsSync(pidFile)) continue;
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function startCluster(): Promise<string> {
  stopNodes();
  rmSync(root, { recursive: true, force: true });
  for (const port of PORTS) {
    const dir = join(root, String(port));
    mkdirSync(dir, { recursive: true });
    execFileSync('redis-server', [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'yes',
      '--pidfile',
      join(process.cwd(), dir, 'redis.pid'),
      '--logfile',
      'redis.log',
    ]);
  }
  for (const port of PORTS) {
    for (let i = 0; i < 50; i++) {
      try {
        if (
          execFileSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).trim() ===
          'PONG'
        )
          break;
      } catch {
        // not yet
      }
      await sleep(100);
    }
  }
  execFileSync(
    'redis-cli',
    [
      '--cluster',
      'create',
      ...PORTS.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 100; i++) {
    const info = PORTS.map((p) =>
      execFileSync('redis-cli', ['-p', String(p), 'cluster', 'info'], { encoding: 'utf8' }),
    );
    if (info.every((x) => x.includes('cluster_state:ok')))
      return PORTS.map((p) => `127.0.0.1:${p}`).join(',');
    await sleep(100);
  }
  throw new Error('the cluster did not become ready');
}

describe('Redis Cluster', { timeout: 300_000 }, () => {
  let nodes: string;
  before(async () => {
    nodes = await startCluster();
  });
  after(() => stopNodes());

  it('every key a script touches hashes to one slot', () => {
    const keys = new KeySpace(16);
    const slotOf = (key: string) =>
      Number(
        execFileSync('redis-cli', ['-p', '7101', 'cluster', 'keyslot', key], {
          encoding: 'utf8',
        }).trim(),
      );
    for (let i = 0; i < 8; i++) {
      const sku = uid('slot');
      const k = keys.forSku(sku);
      const order = keys.orderIdFor(k.partition);
      const slots = new Set(
        [
          k.sku,
          k.users,
          k.expiries,
          k.events,
          k.order(order),
          keys.order(keys.partitionOfOrder(order)!, order),
        ].map(slotOf),
      );
      assert.equal(slots.size, 1, sku);
    }
    const spread = new Set(Array.from({ length: 16 }, (_, p) => slotOf(keys.events(p))));
    assert.ok(spread.size > 8, 'partitions spread over slots');
  });

  describe('race', () => {
    let a: RunningApi;
    let b: RunningApi;
    before(async () => {
      a = await startApi({ REDIS_CLUSTER_NODES: nodes });
      b = await startApi({ REDIS_CLUSTER_NODES: nodes });
    });
    after(async () => {
      await a.stop();
      await b.stop();
    });
    it('2,000 purchases from 1,000 users against the cluster', () => raceScenario(a, b));
  });

  describe('convergence', () => {
    let api: RunningApi;
    before(async () => {
      // Its own writer group and topic partitions are shared: the writer applies any SKU.
      api = await startEngine(['api', 'sweeper', 'relay', 'writer'], {
        REDIS_CLUSTER_NODES: nodes,
        SWEEP_INTERVAL_MS: '200',
      });
    });
    after(() => api.stop());
    it('5,000 operations over 20 SKUs end equal in both stores', () => convergenceScenario(api));
  });
});
