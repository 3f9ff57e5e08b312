// `npm run soak` on a machine where nothing was prepared: it makes, migrates and removes
// stores of its own, whatever database DATABASE_URL names (here one that was never migrated;
// the soak used to send the engine there, and every SKU creation answered 500).
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { ensureDatabase } from '../../tools/services/services.js';
import { testConfig, uid } from '../helpers.js';

describe('npm run soak', { timeout: 300_000 }, () => {
  const base = testConfig().DATABASE_URL;
  const empty = new URL(base);
  empty.pathname = `/${uid('flashsale_empty').replace(/-/g, '_')}`;
  const admin = () => new pg.Client({ connectionString: base });
  const soak = join(import.meta.dirname, '..', '..', 'tools', 'soak.js');
  /** The database the soak's output names is gone. */
  const assertDatabaseRemoved = async (text: string) => {
    const id = /soak run ([0-9a-f]+)/.exec(text)?.[1];
    assert.ok(id, text);
    const c = admin();
    await c.connect();
    const left = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      `flashsale_soak_${id}`,
    ]);
    await c.end();
    assert.equal(left.rowCount, 0, 'the soak removed its database');
  };
  after(async () => {
    const c = admin();
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS "${empty.pathname.slice(1)}" WITH (FORCE)`);
    await c.end();
  });

  it('runs on stores of its own, ends with its one line, and leaves no database behind', async () => {
    await ensureDatabase(empty.toString(), () => undefined);
    const out: string[] = [];
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(
        process.execPath,
        [soak, '--seed', '424242', '--runs', '1', '--commands', '12'],
        {
          env: { ...process.env, DATABASE_URL: empty.toString(), SOAK_KAFKA_NEMESIS: '0' },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      child.stdout.on('data', (d: Buffer) => out.push(d.toString()));
      child.stderr.on('data', (d: Buffer) => out.push(d.toString()));
      child.on('exit', resolve);
    });
    const text = out.join('');
    assert.equal(code, 0, text);
    assert.match(text, /soak: seed 424242, 1 runs, \d+ commands, \d+ faults injected, 0 failures/);
    assert.match(
      text,
      /^run 1: \d+ commands, \d+ faults so far, [\d.]+ min$/m,
      'it says how far it got',
    );
    await assertDatabaseRemoved(text);
  });

  it('stopped early, says how far it got and leaves no process or database behind', async () => {
    const child = spawn(
      process.execPath,
      [soak, '--seed', '434343', '--runs', '1000', '--commands', '12'],
      { env: { ...process.env, SOAK_KAFKA_NEMESIS: '0' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const out: string[] = [];
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const firstRun = new Promise<void>((resolve) =>
      child.stdout.on('data', (d: Buffer) => {
        out.push(d.toString());
        if (/^run 1: /m.test(out.join(''))) resolve();
      }),
    );
    child.stderr.on('data', (d: Buffer) => out.push(d.toString()));
    await Promise.race([firstRun, exited]);
    // Everything it started: engine processes, its redis-server, and theirs.
    const descendants = (root: number): number[] => {
      const table = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/).map(Number) as [number, number]);
      const found: number[] = [];
      for (let todo = [root]; todo.length > 0;) {
        const kids = table.filter(([, ppid]) => todo.includes(ppid)).map(([pid]) => pid);
        found.push(...kids);
        todo = kids;
      }
      return found;
    };
    const started = descendants(child.pid!);
    assert.ok(started.length >= 5, `the soak's processes: ${started.join(' ')}`);
    child.kill('SIGTERM');
    const code = await exited;
    const text = out.join('');
    assert.equal(code, 143, text);
    assert.match(text, /^soak: stopped by SIGTERM after: run \d+: \d+ commands/m);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const deadline = Date.now() + 10_000;
    while (started.some(alive) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(started.filter(alive), [], 'every process it started is gone');
    await assertDatabaseRemoved(text);
  });
});
