// Creates the Redis client (single node or cluster) with the Lua scripts of lua/
// registered through defineCommand: EVALSHA, falling back to EVAL after SCRIPT FLUSH.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cluster, Command, Redis, type Result } from 'ioredis';
import type { Config } from '../shared/config.js';
import { withDeadline } from '../shared/deadline.js';

export type RedisClient = Redis | Cluster;
type Arg = string | number;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** Variable key count: the first argument is the number of keys. */
    fsPurchase(...args: Arg[]): Result<unknown[], Context>;
    fsRelease(...args: Arg[]): Result<unknown[], Context>;
    fsExpire(...args: Arg[]): Result<unknown[], Context>;
    fsConfirm(...args: Arg[]): Result<unknown[], Context>;
    fsRestock(...args: Arg[]): Result<unknown[], Context>;
    fsAck(...args: Arg[]): Result<number, Context>;
    fsSetPaused(...args: Arg[]): Result<unknown[], Context>;
    /** Variable key count: the first argument is the number of keys. */
    fsLoad(...args: Arg[]): Result<unknown[], Context>;
    fsSetAdmission(...args: Arg[]): Result<unknown[], Context>;
    fsJoinQueue(...args: Arg[]): Result<unknown[], Context>;
    fsPollQueue(...args: Arg[]): Result<unknown[], Context>;
    fsAdmit(...args: Arg[]): Result<unknown[], Context>;
  }
}

export const luaDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../../lua');

export interface LuaScript {
  /** Command name on the client, e.g. fsPurchase for purchase-5.lua. */
  command: string;
  numberOfKeys: number | undefined;
  lua: string;
}

/** Reads lua/<verb>-<keys>.lua, inlining `--- @include "name"` from lua/includes/ (nested too). */
export function loadScripts(dir = luaDir): LuaScript[] {
  const include = (source: string): string =>
    source.replace(/^--- @include "([A-Za-z0-9_-]+)"$/gm, (_m, name: string) =>
      include(readFileSync(join(dir, 'includes', `${name}.lua`), 'utf8')),
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
}

/** Scripts that may legitimately run long: they get REDIS_LONG_COMMAND_TIMEOUT_MS. */
const LONG_SCRIPTS = new Set(['fsLoad']);
const longScriptBodies = scripts.filter((s) => LONG_SCRIPTS.has(s.command)).map((s) => s.lua);
const longScriptShas = new Set(
  longScriptBodies.map((lua) => createHash('sha1').update(lua).digest('hex')),
);

function isLong(command: Command): boolean {
  const first = command.args[0];
  if (typeof first !== 'string') return false;
  if (command.name === 'evalsha') return longScriptShas.has(first);
  return command.name === 'eval' && longScriptBodies.includes(first);
}

type SendCommand = (command: Command, ...rest: unknown[]) => unknown;

/**
 * Redis unreachable (refused, or hung with the connection open) must cost a caller about
 * REDIS_COMMAND_TIMEOUT_MS, never minutes, and a command a caller has given up on must not
 * run later behind its back:
 * - every command, sent or queued, fails after its timeout (the long scripts get theirs);
 * - once connected, nothing queues while disconnected: commands fail at once, so nothing
 *   piles up to run on reconnect; before the first connection they wait (bounded) so
 *   start-up does not race the connect;
 * - a command in flight when the connection dropped may have run: it is not sent twice;
 * - reconnects are retried at most a second apart, so the engine resumes by itself;
 * - a server that answers READONLY was a primary and is a replica now (a failover behind
 *   one address, a DNS name or a virtual IP, that left it up): the client reconnects, and
 *   so reaches whichever server the address leads to now. The command itself is answered
 *   with the error (it wrote nothing: Redis refuses a script's first write), not resent.
 * A blocking command needs a client of its own, with this timeout raised by its block time
 * (the relay's reads: Engine.startRelay).
 */
export function createRedis(cfg: Config, opts: RedisClientOptions = {}): RedisClient {
  const common = {
    enableAutoPipelining: true,
    // On a cluster, auto-pipelining routes a command by its first argument; the first
    // argument of the scripts with variable keys is their key count, so they go on their
    // own there (below). The rare ones go on their own here too.
    autoPipeliningIgnoredCommands: ['fsLoad', 'fsExpire'],
    connectionName: opts.name ?? 'flashsale',
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    autoResendUnfulfilledCommands: false,
    connectTimeout: Math.max(2 * cfg.REDIS_COMMAND_TIMEOUT_MS, 2000),
    retryStrategy: (times: number) =>
      Math.min(50 * 2 ** Math.min(times, 5), 1000) + Math.floor(Math.random() * 100),
    reconnectOnError: (err: Error) => (err.message.startsWith('READONLY') ? 1 : false),
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
          autoPipeliningIgnoredCommands: [...common.autoPipeliningIgnoredCommands, 'fsPurchase'],
          redisOptions: common,
          scaleReads: 'master',
          clusterRetryStrategy: common.retryStrategy,
        },
      )
    : new Redis(cfg.REDIS_URL, common);
  // A command that times out while the connection looks open means a hung server (or a
  // dead peer): drop the socket so that what is queued behind it (auto-pipelining sends
  // one batch at a time) fails at once instead of waiting for its own timeout, and the
  // client reconnects by itself. Not while a long script runs: Redis is busy, not gone.
  const longInFlight = new Set<Command>();
  const dropHungConnection = () => {
    if (client instanceof Redis && client.status === 'ready' && longInFlight.size === 0)
      client.stream.destroy();
  };
  const onCommandError = (err: unknown) => {
    if (err instanceof Error && err.message === 'Command timed out') dropHungConnection();
  };
  const target = client as unknown as { sendCommand: SendCommand };
  const send = target.sendCommand.bind(client) as SendCommand;
  target.sendCommand = (command, ...rest) => {
    // Its caller already heard it failed (timed out in the start-up queue): never run it.
    if (command.isSettled && rest[0] === undefined) return command.promise;
    // The first timer set wins (a cluster's node client does not replace it).
    if (isLong(command)) {
      command.setTimeout(cfg.REDIS_LONG_COMMAND_TIMEOUT_MS);
      if (!longInFlight.has(command)) {
        longInFlight.add(command);
        command.promise.then(
          () => longInFlight.delete(command),
          () => longInFlight.delete(command),
        );
      }
    } else {
      command.setTimeout(cfg.REDIS_COMMAND_TIMEOUT_MS);
      command.promise.catch(onCommandError);
    }
    return send(command, ...rest);
  };
  client.once('ready', () => {
    client.options.enableOfflineQueue = false;
  });
  defineScripts(client);
  return client;
}

/** QUIT when the connection answers, within timeoutMs; otherwise just drop it. */
export async function closeRedis(client: RedisClient, timeoutMs = 1000): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  try {
    await withDeadline(client.quit(), timeoutMs);
  } catch {
    client.disconnect();
  }
}
