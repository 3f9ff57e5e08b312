// A SKU's waiting room: buyers join (a ticket, their place, an estimated wait) and poll
// until the admitter (admitter.ts) lets them in; an admitted ticket's poll carries the
// signed Admission-Token the purchase route asks for. Each join and poll is one script in
// the SKU's slot (lua/joinQueue-8.lua, lua/pollQueue-8.lua), rate-limited there per buyer
// and, when the deployment says so, per client address.
// Nothing here runs on the purchase path.
import { randomBytes } from 'node:crypto';
import type { RedisClient } from '../clients/redis.js';
import type { Inventory } from '../inventory/inventory.js';
import { ScriptCode, scriptError } from '../inventory/script-codes.js';
import { AppError } from '../shared/errors.js';
import { NO_CLIENT_ADDRESS, type KeySpace, type QueueKeys } from '../shared/keys.js';
import { queueTicketsRestored } from '../shared/metrics.js';
import type { PassTokens, TicketFields } from './tokens.js';

/** Ticket ids: 128 random bits, base64url. */
export const TICKET_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/**
 * The ticket a buyer holds: `<id>~<place>~<epoch>~<signature>`, its id in Redis, its
 * score in the line, the queue's epoch, and the API's signature over those, the buyer and
 * the SKU (PassTokens.ticketSignature). Redis keeps the id; the rest lets a poll put the
 * ticket back in its place once Redis has lost the line (lua/pollQueue-8.lua). A bare id
 * (a ticket whose place is unknown, or one handed out before tickets were signed) is
 * answered while Redis knows it.
 */
const SIGNED_TICKET =
  /^([A-Za-z0-9_-]{22})~(-?[0-9][0-9.e-]{0,31})~([A-Za-z0-9_-]{11})~([A-Za-z0-9_-]{22})$/;

/** How long a queue's data is kept after its sale's end (polls answer `closed` meanwhile). */
export const QUEUE_AFTER_END_MS = 10 * 60_000;
/** ... and after its last join or admission when the sale has no end. */
export const QUEUE_IDLE_MS = 24 * 3600_000;
/** How long a lapsed admission is remembered (its poll answers `expired`), then forgotten. */
export const REMEMBER_LAPSED_MS = 10 * 60_000;

/** The queue scripts' refusals beyond the inventory's (see their headers). */
export enum QueueCode {
  NotEnabled = -31,
  NotQualified = -32,
  Closed = -33,
  TicketNotFound = -34,
}

export type TicketStatus = 'waiting' | 'admitted' | 'closed' | 'expired';

/** What join and poll answer. */
export interface TicketView {
  ticket: string;
  status: TicketStatus;
  /** 1 is next in line; 0 once admitted; null when closed or expired. */
  position: number | null;
  /** From the SKU's rate (or the pace observed lately) and the time left to the opening. */
  estimatedWaitSeconds: number | null;
  /** Admitted only: the pass to send as the purchase's Admission-Token header. */
  admissionToken?: string;
  /** Admitted (or lapsed) only: when the admission ends. */
  admittedUntil?: string;
}

export interface WaitingRoomDeps {
  redis: RedisClient;
  keys: KeySpace;
  inventory: Inventory;
  passes: PassTokens;
  /** The deployment's buyer rate limit (a SKU's own wins), for joins and polls alike. */
  buyerRatePerSecond: number;
  buyerBurst: number;
  /** The deployment's client address limit (0: off; a SKU's own wins), for joins and polls. */
  clientRatePerSecond: number;
  clientBurst: number;
}

/** The address a join or poll came from (undefined: unknown, and not limited). */
export type ClientAddress = string | undefined;

export class WaitingRoom {
  constructor(private readonly d: WaitingRoomDeps) {}

  /**
   * The keys after the SKU's, then the client limit as the scripts take it: without an
   * address its key is a placeholder the script never touches (no limit applies, the
   * deployment's or the SKU's).
   */
  private limited(q: QueueKeys, buyer: string, address: ClientAddress) {
    return {
      keys: [
        q.waiting,
        q.admitted,
        q.tickets,
        q.buyers,
        q.state,
        q.rate(buyer),
        q.clientRate(address ?? NO_CLIENT_ADDRESS),
      ],
      client: [this.d.clientRatePerSecond, this.d.clientBurst],
    };
  }

  /**
   * Joins the buyer to the SKU's line, or answers the ticket they hold. `qualification` is
   * the Qualification-Token header, verified here; whether the SKU needs it, the script
   * decides. `created` tells a new ticket from the one held.
   */
  async join(
    buyer: string,
    skuId: string,
    qualification: string | undefined,
    address?: ClientAddress,
  ): Promise<{ view: TicketView; created: boolean }> {
    const k = this.d.keys.forSku(skuId);
    const q = this.d.keys.queue(skuId);
    const qualified =
      qualification !== undefined && this.d.passes.qualifies(qualification, buyer, skuId);
    const limited = this.limited(q, buyer, address);
    const reply = await this.d.redis.fsJoinQueue(
      k.sku,
      ...limited.keys,
      buyer,
      randomBytes(16).toString('base64url'),
      // The pre-opening lottery's draw, from the OS: Lua's math.random is seeded alike on
      // every Redis, so its order would be the same for every sale.
      String(randomBytes(6).readUIntBE(0, 6) / 2 ** 48),
      qualified ? '1' : '0',
      this.d.buyerRatePerSecond,
      this.d.buyerBurst,
      QUEUE_IDLE_MS,
      QUEUE_AFTER_END_MS,
      ...limited.client,
      // The queue's epoch, should this join be the first of its queue.
      randomBytes(8).toString('base64url'),
    );
    const code = Number(reply[0]);
    if (code !== 1 && code !== 2) return this.refused(skuId, code, reply);
    const id = String(reply[1]);
    const [place, epoch] = [reply[9], reply[10]];
    const ticket =
      typeof place === 'string' && typeof epoch === 'string'
        ? this.signed({ buyer, sku: skuId, id, place, epoch })
        : id;
    return { view: this.view(buyer, skuId, reply, ticket), created: code === 1 };
  }

  private signed(t: TicketFields): string {
    return `${t.id}~${t.place}~${t.epoch}~${this.d.passes.ticketSignature(t)}`;
  }

  /**
   * A ticket as a buyer sent it: its id, and its place and epoch when its signature holds.
   * The id alone (128 random bits, which only its buyer's polls may use) answers while
   * Redis knows it, so a signature that fails (another buyer's or SKU's, a place changed,
   * a secret rotated) only takes away the way back into a lost line.
   */
  private parse(buyer: string, sku: string, ticket: string) {
    if (TICKET_PATTERN.test(ticket)) return { id: ticket, place: '', epoch: '' };
    const m = SIGNED_TICKET.exec(ticket);
    if (!m) throw new AppError('TICKET_NOT_FOUND');
    const t = { buyer, sku, id: m[1]!, place: m[2]!, epoch: m[3]! };
    return this.d.passes.ticketSigned(t, m[4]!) ? t : { id: t.id, place: '', epoch: '' };
  }

  /** Where the buyer's ticket stands; TICKET_NOT_FOUND for anyone else's. */
  async poll(
    buyer: string,
    skuId: string,
    ticket: string,
    address?: ClientAddress,
  ): Promise<TicketView> {
    const k = this.d.keys.forSku(skuId);
    const q = this.d.keys.queue(skuId);
    const t = this.parse(buyer, skuId, ticket);
    const limited = this.limited(q, buyer, address);
    const reply = await this.d.redis.fsPollQueue(
      k.sku,
      ...limited.keys,
      buyer,
      t.id,
      this.d.buyerRatePerSecond,
      this.d.buyerBurst,
      ...limited.client,
      t.place,
      t.epoch,
      QUEUE_IDLE_MS,
      QUEUE_AFTER_END_MS,
    );
    const code = Number(reply[0]);
    if (code !== 1) return this.refused(skuId, code, reply);
    if (reply[9] === 1) queueTicketsRestored.inc({ sku: skuId });
    return this.view(buyer, skuId, reply, ticket);
  }

  /** Tickets waiting in each SKU's line (one round trip, pipelined). */
  async waitingCounts(skuIds: readonly string[]): Promise<Map<string, number>> {
    const counts = await Promise.all(
      skuIds.map((s) => this.d.redis.zcard(this.d.keys.queue(s).waiting)),
    );
    return new Map(skuIds.map((s, i) => [s, counts[i]!]));
  }

  private refused(skuId: string, code: number, reply: unknown[]): never | Promise<never> {
    switch (code) {
      case ScriptCode.SkuStateMissing:
        return this.d.inventory.skuStateMissing(skuId);
      case QueueCode.NotEnabled:
        throw new AppError('QUEUE_NOT_ENABLED');
      case QueueCode.NotQualified:
        throw new AppError('NOT_QUALIFIED');
      case QueueCode.Closed:
        throw new AppError('QUEUE_CLOSED');
      case QueueCode.TicketNotFound:
        throw new AppError('TICKET_NOT_FOUND');
      default:
        throw scriptError(code, reply);
    }
  }

  /**
   * {code, ticket id, status, position, admittedUntil, now, startsAt, admitRate,
   * observedRate}, answered with the ticket as the buyer holds it.
   */
  private view(buyer: string, skuId: string, reply: unknown[], ticket: string): TicketView {
    const status = String(reply[2]) as TicketStatus;
    const position = reply[3] === null ? null : Number(reply[3]);
    const admittedUntil = reply[4] === null ? undefined : Number(reply[4]);
    const now = Number(reply[5]);
    const startsAt = Number(reply[6]);
    const view: TicketView = {
      ticket,
      status,
      position,
      estimatedWaitSeconds: status === 'admitted' ? 0 : null,
    };
    if (status === 'waiting' && position !== null) {
      // A fixed rate says it; a pace tied to units left is judged by what it did lately.
      const rate = Number(reply[7] ?? 0) || Number(reply[8] ?? 0);
      const untilOpenS = Math.max(0, startsAt - now) / 1000;
      view.estimatedWaitSeconds = rate > 0 ? Math.ceil(untilOpenS + position / rate) : null;
    }
    if (admittedUntil !== undefined) {
      view.admittedUntil = new Date(admittedUntil).toISOString();
      if (status === 'admitted')
        view.admissionToken = this.d.passes.signAdmission({
          buyer,
          sku: skuId,
          ticket: String(reply[1]),
          expiresAtMs: admittedUntil,
        });
    }
    return view;
  }
}
