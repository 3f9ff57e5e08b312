// `npm run soak` on a machine where nothing was prepared: it makes, migrates and removes
// stores of its own, whatever database DATABASE_URL names (here one that was never migrated;
// the soak used to send the engine there, and every SKU creation answered 500).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
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
  after(async () => {
    const c = admin();
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS "${empty.pathname.slice(1)}" WITH (FORCE)`);
    await c.end();
  });

  it('runs on stores of its own, ends with its one line, and leaves no database behind', async () => {
    await ensureDatabase(empty.toString(), () => undefined);
    const soak = join(import.meta.dirname, '..', '..', 'tools', 'soak.js');
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
    const id = /soak run ([0-9a-f]+)/.exec(text)?.[1];
    assert.ok(id, text);
    const c = admin();
    await c.connect();
    const left = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      `flashsale_soak_${id}`,
    ]);
    await c.end();
    assert.equal(left.rowCount, 0, 'the soak removed its database');
  });
});
