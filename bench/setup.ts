// Shared set-up of benchmarks and the demo: services up, database migrated, an in-process
// engine (not serving HTTP) for admin work and for reading both stores.
import { loadConfig, type Config } from '../src/shared/config.js';
import { migrate } from '../tools/db/migrate.js';
import { Engine } from '../src/engine.js';
import { servicesUp } from '../tools/services/services.js';

export async function prepare(
  log: (line: string) => void = () => undefined,
): Promise<{ cfg: Config; engine: Engine }> {
  const cfg = loadConfig({ ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' });
  await servicesUp(cfg, log);
  await migrate(cfg.DATABASE_URL);
  return { cfg, engine: new Engine(cfg, 'bench') };
}
