// Engine processes for drills: `node <compiled src/main.js> <roles>`, detached from the
// test's stdio with their logs under TEST_LOG_DIR (default .services/test-logs), restarted
// when killed, and always reaped when the test process ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const mainJs = fileURLToPath(new URL('../../src/main.js', import.meta.url));
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export interface Proc {
  name: string;
  child: ChildProcess;
  /** The API's address, once it listens (never resolves for other roles). */
  url: Promise<string>;
  exited: Promise<NodeJS.Signals | number | null>;
}

export function spawnRoles(name: string, roles: string[], env: Record<string, string> = {}): Proc {
  const logs = process.env.TEST_LOG_DIR ?? '.services/test-logs';
  mkdirSync(logs, { recursive: true });
  const child = spawn(process.execPath, [mainJs, ...roles], {
    env: { ...process.env, LOG_LEVEL: 'info', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const log = createWriteStream(`${logs}/${name}.log`, { flags: 'a' });
  child.stderr!.pipe(log);
  const lines = createInterface({ input: child.stdout! });
  const url = new Promise<string>((resolve) => {
    lines.on('line', (line) => {
      log.write(line + '\n');
      const m = /"listening":"(http:\/\/[^"]+)"/.exec(line);
      if (m?.[1]) resolve(m[1]);
    });
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(signal ?? code);
    }),
  );
  return { name, child, url, exited };
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
export async function stopProc(p: Proc, graceMs = 10_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const forced = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(forced);
}

export function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
}

export interface Supervised {
  readonly deaths: number;
  readonly proc: Proc;
  /** kill -9 the current process; the supervisor starts the next one. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Keeps one process of the given roles alive: restarts it whenever it dies. `envFor`
 * gives the environment of each incarnation (for example a crash point for the first few).
 */
export function supervise(
  name: string,
  roles: string[],
  envFor: (deaths: number) => Record<string, string> = () => ({}),
): Supervised {
  let stopped = false;
  let deaths = 0;
  let current: Proc;
  const launch = (): Proc => {
    const p = spawnRoles(`${name}-${deaths}`, roles, envFor(deaths));
    current = p;
    void p.exited.then((how) => {
      if (stopped) return;
      if (how === 'SIGKILL') deaths += 1;
      current = launch();
    });
    return p;
  };
  launch();
  return {
    get deaths() {
      return deaths;
    },
    get proc() {
      return current;
    },
    async kill() {
      const p = current;
      p.child.kill('SIGKILL');
      await p.exited;
    },
    async stop() {
      stopped = true;
      await stopProc(current);
    },
  };
}
