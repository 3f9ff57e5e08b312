// `npm run db:migrate`: creates the database when missing, then applies migrations.
import { config } from '../../src/shared/config.js';
import { ensureDatabase } from '../services/services.js';
import { migrate } from './migrate.js';

// Development tooling: it reads only addresses, never the secrets, so the development
// defaults are fine here whatever NODE_ENV says.
process.env.NODE_ENV ??= 'development';

try {
  const cfg = config();
  await ensureDatabase(cfg.DATABASE_URL, console.log);
  const { applied, alreadyApplied } = await migrate(cfg.DATABASE_URL);
  for (const name of applied) console.log(`applied ${name}`);
  console.log(`migrations: ${applied.length} applied, ${alreadyApplied.length} already in place`);
} catch (err) {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
}
