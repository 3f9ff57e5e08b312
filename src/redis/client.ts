// Creates the Redis client (single node or cluster) with the Lua scripts of lua/
// registered through defineCommand: EVALSHA, falling back to EVAL after SCRIPT FLUSH.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, Redis, type Result } from 'ioredis';
import type { Config } from '../config/index.js';

export type RedisClient = Redis | Cluster;
type Arg = string | number;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    fsPurchase(...args: Arg[]): Result<unknown[], Context>;
    fsRelease(...args: Arg[]): Result<unknown[], Context>;
    fsConfirm(...args: Arg[]): Result<unknown[], Context>;
    fsRestock(...args: Arg[]): Result<unknown[], Context>;
    fsSetPaused(...args: Arg[]): Result<unknown[], Context>;
    /** Variable key count: the first argument is the number of keys. */
    fsLoad(...args: Arg[]): Result<unknown[], Context>;
  }
}

export const luaDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../lua');

export interface LuaScript {
  /** Command name on the client, e.g. fsPurchase for purchase-5.lua. */
  command: string;
  numberOfKeys: number | undefined;
  lua: string;
}

/** Reads lua/<verb>-<keys>.lua, inlining `--- @include "name"` from lua/includes/. */
export function loadScripts(dir = luaDir): LuaScript[] {
  const include = (source: string): string =>
    source.replace(/^--- @include "([A-Za-z0-9_-]+)"$/gm, (_m, name: string) =>
      readFileSync(join(dir, 'includes', `${name}.lua`), 'utf8'),
    );
  return readdirSync(dir)
    .filter((f) => f.endsWith('.lua'))
    .map((file) => {
      const match = /^([A-Za-z]+)-(\d+|n)\.lua$/.exec(file);
      if (!match?.[1] || !match[2])
        throw new Error(`lua/${file}: expected <verb>-<numberOfKeys>.lua`);
      const verb = match[1];
      return {
        command: `fs${verb.charAt(0).toUpperCase()}${verb.slice(1)}`,
        numberOfKeys: match[2] === 'n' ? undefined : Number(match[2]),
        lua: include(readFileSync(join(dir, file), 'utf8')),
      };
    });
}

const scripts = loadScripts();

export function defineScripts(client: RedisClient): void {
  for (const s of scripts) {
    client.defineCommand(s.command, { lua: s.lua, numberOfKeys: s.numberOfKeys });
  }
}

export interface RedisClientOptions {
  /** Name shown by CLIENT LIST; helps when reading a busy server. */
  name?: string;
  /** Fail fast instead of queueing while disconnected (the API answers 503 at once). */
  failFast?: boolean;
}

export function createRedis(cfg: Config, opts: RedisClientOptions = {}): RedisClient {
  const common = {
    enableAutoPipelining: true,
    // Auto-pipelining routes a command by its first argument; fsLoad's first argument is
    // its key count (variable keys), so it goes on its own.
    autoPipeliningIgnoredCommands: ['fsLoad'],
    connectionName: opts.name ?? 'flashsale',
    maxRetriesPerRequest: opts.failFast ? 1 : 20,
    enableOfflineQueue: true,
  };
  const nodes = cfg.REDIS_CLUSTER_NODES;
  const client: RedisClient = nodes?.length
    ? new Cluster(
        nodes.map((n) => {
          const [host, port] = n.split(':');
          return { host: host ?? '127.0.0.1', port: Number(port) };
        }),
        {
          enableAutoPipelining: true,
          autoPipeliningIgnoredCommands: common.autoPipeliningIgnoredCommands,
          redisOptions: common,
          scaleReads: 'master',
        },
      )
    : new Redis(cfg.REDIS_URL, common);
  defineScripts(client);
  return client;
}

export async function closeRedis(client: RedisClient): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}
