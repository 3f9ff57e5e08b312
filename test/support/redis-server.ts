// A redis-server of a test's own (never the shared one): a free port, its own data folder,
// started detached with its log in that folder; kill -9 and restart on the same data;
// always reaped when the test process exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { redisAnswers } from '../../tools/services/services.js';

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface OwnRedis {
  port: number;
  url: string;
  dir: string;
  /** kill -9: no chance to flush anything. */
  kill(): Promise<void>;
  /** Starts it again on the same port and data folder. */
  start(): Promise<void>;
  /** Stops it (SIGKILL) and removes its folder. */
  close(): Promise<void>;
  /** SIGSTOP / SIGCONT: a Redis that hangs without closing its connections. */
  freeze(): void;
  thaw(): void;
  /** The running redis-server's process id (for its CPU time). */
  pid(): number | undefined;
}

/** Starts `redis-server --port <free> --dir <tmp> --save '' <args>`. */
export async function startOwnRedis(args: string[]): Promise<OwnRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'flashsale-redis-'));
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const launch = async () => {
    const c = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--logfile',
        join(dir, 'redis.log'),
        ...args,
      ],
      { detached: true, stdio: 'ignore' },
    );
    running.add(c);
    c.once('exit', () => running.delete(c));
    child = c;
    const deadline = Date.now() + 20_000;
    while (!(await redisAnswers(url))) {
      if (c.exitCode !== null) throw new Error(`redis-server on ${port} exited; see its log`);
      if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer`);
      await sleep(50);
    }
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    process.kill(-c.pid!, 'SIGCONT');
    process.kill(-c.pid!, 'SIGKILL');
    await gone;
  };
  await launch();
  return {
    port,
    url,
    dir,
    freeze: () => process.kill(-child!.pid!, 'SIGSTOP'),
    thaw: () => process.kill(-child!.pid!, 'SIGCONT'),
    pid: () => child?.pid,
    kill,
    start: launch,
    close: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A redis-server of the test's own; no persistence unless `args` asks for it. */
export const ownRedis = (args: string[] = []) => startOwnRedis(args);

export interface MovableAddress {
  port: number;
  url: string;
  /** New connections go to this redis-server's port from now on; open ones stay put. */
  moveTo(port: number): void;
  close(): Promise<void>;
}

/**
 * One address in front of several redis-servers, as a DNS name or a virtual IP is in front
 * of a primary that fails over: a TCP proxy whose new connections go to the current target,
 * while those already open stay with the server they reached.
 */
export async function movableAddress(targetPort: number): Promise<MovableAddress> {
  let target = targetPort;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    });
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    moveTo: (p) => {
      target = p;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
