// Every Redis key the engine uses is built here. Keys of one SKU carry its inventory
// partition as a hash tag, so all keys a script touches share one Redis Cluster slot.
import { randomFillSync } from 'node:crypto';
import { v7 as uuidv7 } from 'uuid';

/** SKU and user ids: nothing that could smuggle a `{` or `:` into a key. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/** Client-chosen Idempotency-Key values. */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;
/** UUIDv7 whose last three hex digits name the inventory partition (see orderIdFor). */
export const ORDER_ID_PATTERN =
  /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export const MAX_PARTITIONS = 1024;
/**
 * The tail of a client-address rate-limit key when the request's address is unknown (a
 * caller inside the process, or a connection already closed): no client limit applies, the
 * deployment's or a SKU's, and the scripts never touch the key. No address ends in '-'.
 */
export const NO_CLIENT_ADDRESS = '-';

// Random bytes for order ids, drawn from the OS 4 KiB at a time: uuid's own source asks
// WebCrypto for 16 bytes per id, which took a tenth of the API's CPU on the purchase route.
const randomPool = new Uint8Array(4096);
let randomUsed = randomPool.length;
function randomBytes16(): Uint8Array {
  if (randomUsed === randomPool.length) {
    randomFillSync(randomPool);
    randomUsed = 0;
  }
  randomUsed += 16;
  return randomPool.subarray(randomUsed - 16, randomUsed);
}

/** FNV-1a, 32 bits: stable across processes, languages and restarts. */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function tag(prefix: string, partition: number): string {
  return `${prefix}${String(partition).padStart(2, '0')}`;
}

export interface SkuKeys {
  readonly partition: number;
  readonly sku: string;
  readonly users: string;
  readonly expiries: string;
  readonly events: string;
  /**
   * After Redis lost its data: claim key -> the order id the rebuild restored it to, so a
   * purchase that claimed a placeholder before the restore replays instead of buying again.
   */
  readonly restoredClaims: string;
  order(orderId: string): string;
}

/** A SKU's waiting room (see src/admission/waiting-room.ts), in the SKU's slot. */
export interface QueueKeys {
  /** zset: waiting ticket -> place (before the opening a random one in [-1, 0), then µs). */
  readonly waiting: string;
  /** zset: admitted ticket -> until when its admission lasts (ms). */
  readonly admitted: string;
  /** hash: ticket -> buyer. */
  readonly tickets: string;
  /** hash: buyer -> their ticket (one per buyer). */
  readonly buyers: string;
  /** hash: the admission pace's state (credit, last pass, observed rate). */
  readonly state: string;
  /** GCRA state of one buyer's joins and polls (apart from their purchases'). */
  rate(buyer: string): string;
  /** GCRA state of one client address's joins and polls (apart from its purchases'). */
  clientRate(address: string): string;
}

export class KeySpace {
  constructor(readonly partitions: number) {
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
      throw new RangeError(`partitions must be 1..${MAX_PARTITIONS}`);
    }
  }

  partitionOf(skuId: string): number {
    return fnv1a(skuId) % this.partitions;
  }

  events(partition: number): string {
    return `fs:{${tag('p', partition)}}:events`;
  }

  expiries(partition: number): string {
    return `fs:{${tag('p', partition)}}:expiries`;
  }

  order(partition: number, orderId: string): string {
    return `fs:{${tag('p', partition)}}:order:${orderId}`;
  }

  forSku(skuId: string): SkuKeys {
    assertId(skuId, 'sku');
    const partition = this.partitionOf(skuId);
    const prefix = `fs:{${tag('p', partition)}}`;
    return {
      partition,
      sku: `${prefix}:sku:${skuId}`,
      users: `${prefix}:sku:${skuId}:users`,
      expiries: `${prefix}:expiries`,
      events: `${prefix}:events`,
      restoredClaims: `${prefix}:sku:${skuId}:restored-claims`,
      order: (orderId: string) => this.order(partition, orderId),
    };
  }

  /** A SKU's waiting-room keys: apart from forSku, which the purchase path builds. */
  queue(skuId: string): QueueKeys {
    assertId(skuId, 'sku');
    const prefix = `fs:{${tag('p', this.partitionOf(skuId))}}:sku:${skuId}:q`;
    return {
      waiting: `${prefix}:waiting`,
      admitted: `${prefix}:admitted`,
      tickets: `${prefix}:tickets`,
      buyers: `${prefix}:buyers`,
      state: `${prefix}:state`,
      rate: (buyer: string) => {
        assertId(buyer, 'user');
        return `${prefix}:rl:${buyer}`;
      },
      // A normalized client address (see src/http/client-address.ts), not an id.
      clientRate: (address: string) => `${prefix}:rla:${address}`,
    };
  }

  /**
   * Binds a user's Idempotency-Key to one request (sku, quantity, order id). It lives in
   * the user's slot, not the SKU's, so reusing a key for another SKU is caught even when
   * the two SKUs live in different partitions.
   */
  idempotencyClaim(userId: string, key: string): string {
    assertId(userId, 'user');
    if (!IDEMPOTENCY_KEY_PATTERN.test(key)) throw new RangeError('invalid idempotency key');
    return `fs:{${tag('u', fnv1a(userId) % this.partitions)}}:idem:${userId}:${key}`;
  }

  /**
   * GCRA state of one limited party's purchases of one SKU, beside the SKU's keys: the
   * buyer (`b`) or the client address (`c`; colons of IPv6 are fine in a key's tail), or
   * NO_CLIENT_ADDRESS when the request's address is unknown.
   */
  rateLimit(skuId: string, party: 'b' | 'c', id: string): string {
    const partition = this.partitionOf(skuId);
    return `fs:{${tag('p', partition)}}:rl:${skuId}:${party}:${id}`;
  }

  /** A lock or lease of one partition (its hash tag keeps it beside the keys it guards). */
  lock(partition: number, name: string): string {
    return `fs:{${tag('p', partition)}}:lock:${name}`;
  }

  /**
   * Changes whenever a SKU is created (and vanishes when Redis loses its data), so an
   * instance's memory of ids PostgreSQL did not know can tell when it may be out of date.
   */
  catalogEpoch(): string {
    return 'fs:catalog:epoch';
  }

  /** A process-wide lease (one leader across instances). */
  leader(role: string): string {
    return `fs:leader:${role}`;
  }

  /** The API processes publishing their sale counters (zset: instance id -> last publish). */
  liveInstances(): string {
    return 'fs:live:instances';
  }

  /** One API process's sale counters (a hash with a short TTL, see src/live/counters.ts). */
  liveCounters(instanceId: string): string {
    return `fs:live:counters:${instanceId}`;
  }

  /** A fresh UUIDv7 that also names the partition, so any order can be found from its id. */
  orderIdFor(partition: number): string {
    const id = uuidv7({ random: randomBytes16() });
    return id.slice(0, -3) + partition.toString(16).padStart(3, '0');
  }

  /** The partition an order id names, or undefined for an id this engine did not make. */
  partitionOfOrder(orderId: string): number | undefined {
    if (!ORDER_ID_PATTERN.test(orderId)) return undefined;
    const partition = parseInt(orderId.slice(-3), 16);
    return partition < this.partitions ? partition : undefined;
  }
}

/** What an idempotency claim holds: the request it binds the key to, and its order. */
export interface Claim {
  sku: string;
  quantity: number;
  orderId: string;
}

export function claimValue(c: Claim): string {
  return `${c.sku}|${c.quantity}|${c.orderId}`;
}

export function parseClaim(value: string): Claim | undefined {
  const [sku, quantity, orderId] = value.split('|');
  // The purchase script writes the order id into its event's JSON as is.
  if (!sku || !quantity || !orderId || !ORDER_ID_PATTERN.test(orderId)) return undefined;
  return { sku, quantity: Number(quantity), orderId };
}

/**
 * An order as Redis keeps it (the scripts write it, lua/includes/order.lua reads it): one
 * string, `<user>|<sku>|<quantity>|<status>|<createdAt ms>|<expiresAt ms>`. A purchase
 * writes it with one SET, where the six fields of a hash cost it a twentieth of its Redis
 * time. Ids match ID_PATTERN, so no part holds a '|'. Orders an older engine wrote are
 * hashes of the same six fields: every reader takes both (see readOrderRecord).
 */
export interface OrderRecord {
  user: string;
  sku: string;
  quantity: number;
  status: string;
  createdAt: number;
  expiresAt: number;
}

export function orderValue(o: OrderRecord): string {
  return `${o.user}|${o.sku}|${o.quantity}|${o.status}|${o.createdAt}|${o.expiresAt}`;
}

/** An order's string, as lua/includes/order.lua and the purchase script match it. */
export const ORDER_VALUE_PATTERN = /^([^|]+)\|([^|]+)\|(\d+)\|([A-Za-z]+)\|(\d+)\|(\d+)$/;

/** The record of an order's string, or of an older engine's hash; undefined: malformed. */
export function parseOrder(value: string | Record<string, string>): OrderRecord | undefined {
  // A hash's fields joined as the string: one grammar for both (lua/includes/order.lua).
  const text =
    typeof value === 'string'
      ? value
      : [value.user, value.sku, value.quantity, value.status, value.createdAt, value.expiresAt]
          .map((field) => field ?? '')
          .join('|');
  const f = ORDER_VALUE_PATTERN.exec(text)?.slice(1);
  const [user, sku, quantity, status, createdAt, expiresAt] = f ?? [];
  if (!user || !sku || !quantity || !status || !createdAt || !expiresAt) return undefined;
  return {
    user,
    sku,
    quantity: Number(quantity),
    status,
    createdAt: Number(createdAt),
    expiresAt: Number(expiresAt),
  };
}

/** An expiry index entry names its SKU and order: `<sku>:<orderId>` (the scripts write it). */
export function parseExpiryMember(member: string): { sku: string; orderId: string } {
  const at = member.indexOf(':');
  return { sku: member.slice(0, at), orderId: member.slice(at + 1) };
}

function assertId(id: string, what: string): void {
  if (!ID_PATTERN.test(id)) throw new RangeError(`invalid ${what} id`);
}
