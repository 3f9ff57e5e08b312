// Entry point: `node dist/src/main.js [role ...]`; no role means every role.
import { ConfigError, loadConfig } from './shared/config.js';
import { Engine, ROLES, type Role } from './engine.js';
import { startTracing, stopTracing, TracingConfigError } from './shared/tracing.js';

const args = process.argv.slice(2);
const unknown = args.filter((a) => !(ROLES as readonly string[]).includes(a));
if (unknown.length > 0) {
  console.error(`unknown role(s): ${unknown.join(', ')}; roles are ${ROLES.join(', ')}`);
  process.exit(2);
}
const roles: readonly Role[] = args.length > 0 ? (args as Role[]) : ROLES;

let cfg;
try {
  cfg = loadConfig();
} catch (err) {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
}

const role = roles.length === 1 ? roles[0]! : 'engine';
let tracing: boolean;
try {
  tracing = startTracing(role);
} catch (err) {
  console.error(err instanceof TracingConfigError ? err.message : err);
  process.exit(1);
}

const engine = new Engine(cfg, role);
let stopping = false;
const shutdown = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  engine.log.info({ signal }, 'shutting down');
  // Engine.stop bounds every step; this is the last resort if something still hangs.
  const force = setTimeout(() => process.exit(1), cfg.SHUTDOWN_TIMEOUT_MS + 2000);
  force.unref();
  await engine.stop();
  await stopTracing();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

try {
  await engine.start(roles);
  const a = engine.address;
  engine.log.info(
    { roles, tracing, ...(a ? { listening: `http://${a.host}:${a.port}` } : {}) },
    'engine started',
  );
} catch (err) {
  engine.log.fatal({ err }, 'start failed');
  await engine.stop().catch(() => undefined);
  process.exit(1);
}
