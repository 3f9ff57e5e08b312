// The SQL migrations are written by hand (no schema engine offline); this proves the
// migrated database matches schema.prisma, and that migrating twice changes nothing.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { migrate, readMigrations } from '../../tools/db/migrate.js';
import { ensureDatabase } from '../../tools/services/services.js';
import { testConfig, uid } from '../helpers.js';

interface Field {
  model: string;
  table: string;
  column: string;
  type: string;
  optional: boolean;
  list: boolean;
  native?: string;
}

/** Reads the scalar fields of schema.prisma's models (relations skipped). */
function schemaFields(): {
  fields: Field[];
  enums: Map<string, string>;
  uniques: { table: string; columns: string[] }[];
} {
  const text = readFileSync(new URL('../../../prisma/schema.prisma', import.meta.url), 'utf8');
  const enums = new Map<string, string>();
  for (const m of text.matchAll(/^enum (\w+) \{([^}]*)\}/gm)) {
    const map = /@@map\("([^"]+)"\)/.exec(m[2]!);
    enums.set(m[1]!, map ? map[1]! : m[1]!);
  }
  const models = [...text.matchAll(/^model (\w+) \{([^}]*)\}/gm)];
  const modelNames = new Set(models.map((m) => m[1]!));
  const fields: Field[] = [];
  const uniques: { table: string; columns: string[] }[] = [];
  for (const m of models) {
    const body = m[2]!;
    const table = /@@map\("([^"]+)"\)/.exec(body)?.[1] ?? m[1]!;
    const columnOf = new Map<string, string>();
    for (const line of body.split('\n').map((l) => l.trim())) {
      const f = /^(\w+)\s+(\w+)(\?|\[\])?(.*)$/.exec(line);
      if (!f || line.startsWith('//') || line.startsWith('@@')) continue;
      const [, name, type, mod, rest] = f;
      if (modelNames.has(type!) || mod === '[]') continue;
      const column = /@map\("([^"]+)"\)/.exec(rest!)?.[1] ?? name!;
      columnOf.set(name!, column);
      const native = /@db\.(\w+)/.exec(rest!)?.[1];
      fields.push({
        model: m[1]!,
        table,
        column,
        type: type!,
        optional: mod === '?',
        list: false,
        ...(native ? { native } : {}),
      });
    }
    for (const u of body.matchAll(/@@unique\(\[([^\]]+)\]/g)) {
      uniques.push({
        table,
        columns: u[1]!.split(',').map((c) => columnOf.get(c.trim()) ?? c.trim()),
      });
    }
  }
  return { fields, enums, uniques };
}

function expectedPgType(f: Field, enums: Map<string, string>): string {
  if (enums.has(f.type)) return enums.get(f.type)!;
  if (f.native === 'Uuid') return 'uuid';
  if (f.native === 'Timestamptz') return 'timestamptz';
  switch (f.type) {
    case 'String':
      return 'text';
    case 'Int':
      return 'int4';
    case 'BigInt':
      return 'int8';
    case 'Float':
      return 'float8';
    case 'Boolean':
      return 'bool';
    case 'DateTime':
      return 'timestamp';
    case 'Json':
      return 'jsonb';
    default:
      throw new Error(`no mapping for ${f.type}`);
  }
}

describe('migrations', () => {
  const cfg = testConfig();
  const dbName = uid('mig').replace(/-/g, '_');
  const url = new URL(cfg.DATABASE_URL);
  url.pathname = `/${dbName}`;
  const admin = new URL(cfg.DATABASE_URL);
  admin.pathname = '/postgres';

  before(async () => ensureDatabase(url.toString(), () => undefined));
  after(async () => {
    const c = new pg.Client({ connectionString: admin.toString() });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`);
    await c.end();
  });

  it('apply once, then a second run changes nothing', async () => {
    const first = await migrate(url.toString());
    assert.deepEqual(
      first.applied,
      readMigrations().map((m) => m.name),
    );
    const c = new pg.Client({ connectionString: url.toString() });
    await c.connect();
    const schemaBefore = await c.query(
      `SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2`,
    );
    const second = await migrate(url.toString());
    assert.deepEqual(second.applied, []);
    assert.equal(second.alreadyApplied.length, first.applied.length);
    const schemaAfter = await c.query(
      `SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2`,
    );
    assert.deepEqual(schemaAfter.rows, schemaBefore.rows);
    const book = await c.query(
      `SELECT migration_name, checksum, finished_at, applied_steps_count FROM _prisma_migrations`,
    );
    for (const m of readMigrations()) {
      const row = book.rows.find((r) => r.migration_name === m.name);
      assert.ok(row, m.name);
      // Prisma's checksum: lowercase hex SHA-256 of the file's bytes, computed here on its own.
      const file = new URL(`../../../prisma/migrations/${m.name}/migration.sql`, import.meta.url);
      assert.equal(row.checksum, createHash('sha256').update(readFileSync(file)).digest('hex'));
      assert.ok(row.finished_at);
      assert.equal(row.applied_steps_count, 1);
    }
    await c.end();
  });

  it('the migrated database matches schema.prisma: every field has its column, type and nullability', async (t) => {
    const { fields, enums, uniques } = schemaFields();
    // The parser must find the fields the engine depends on, or the comparison proves nothing.
    for (const known of [
      'Sku.last_sequence',
      'Order.idempotency_key',
      'StockEvent.stock_after',
      'WebhookDelivery.next_attempt_at',
    ])
      assert.ok(
        fields.some((f) => `${f.model}.${f.column}` === known),
        `the schema parser found ${known}`,
      );
    const c = new pg.Client({ connectionString: url.toString() });
    await c.connect();
    t.after(() => c.end().catch(() => undefined));
    const cols = await c.query<{
      table_name: string;
      column_name: string;
      udt_name: string;
      is_nullable: string;
      datetime_precision: number | null;
    }>(
      `SELECT table_name, column_name, udt_name, is_nullable, datetime_precision FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations'`,
    );
    const byKey = new Map(cols.rows.map((r) => [`${r.table_name}.${r.column_name}`, r]));
    for (const f of fields) {
      const col = byKey.get(`${f.table}.${f.column}`);
      assert.ok(col, `missing column ${f.table}.${f.column} (${f.model})`);
      assert.equal(col.udt_name, expectedPgType(f, enums), `${f.table}.${f.column} type`);
      assert.equal(col.is_nullable === 'YES', f.optional, `${f.table}.${f.column} nullability`);
      if (f.type === 'DateTime')
        assert.equal(col.datetime_precision, 3, `${f.table}.${f.column} precision`);
      byKey.delete(`${f.table}.${f.column}`);
    }
    assert.deepEqual(
      [...byKey.keys()],
      [],
      'columns in the database that schema.prisma does not have',
    );
    for (const u of uniques) {
      const idx = await c.query(
        `SELECT indexdef FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE 'CREATE UNIQUE%'`,
        [u.table],
      );
      const lists = idx.rows.map(
        (r) =>
          /\(([^)]*)\)/
            .exec(r.indexdef as string)?.[1]
            ?.split(',')
            .map((x) => x.trim().replace(/"/g, '')) ?? [],
      );
      assert.ok(
        lists.some((cols) => cols.join(',') === u.columns.join(',')),
        `unique ${u.table}(${u.columns.join(',')}) in ${JSON.stringify(lists)}`,
      );
    }
    await assert.rejects(
      c.query(
        `INSERT INTO skus (id, name, total_supplied, available, per_user_limit, reservation_ttl_seconds) VALUES ('neg', 'n', 1, -1, 1, 60)`,
      ),
      /skus_available_non_negative/,
    );
  });

  it('refuses a migration that was edited after it was applied', async () => {
    const { mkdtempSync, cpSync, appendFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'mig-'));
    cpSync(new URL('../../../prisma/migrations', import.meta.url), dir, { recursive: true });
    const first = readMigrations(dir)[0]!;
    appendFileSync(join(dir, first.name, 'migration.sql'), '\n-- edited\n');
    await assert.rejects(migrate(url.toString(), dir), /modified after it was applied/);
  });
});
