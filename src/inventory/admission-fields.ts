// A SKU's admission settings (issue 11): its waiting room, whether it needs the seller's
// Qualification-Token, and its own buyer and client-address rate limits. PostgreSQL keeps
// them (columns of `skus`); the SKU's Redis hash carries them as the fields below, written at creation, by
// the admin route that changes them, and by every rebuild, and read by the purchase and
// queue scripts. This file is the one place that maps between the three shapes.
import type { Sku } from '../generated/prisma/client.js';

/** Seconds an admitted ticket's Admission-Token lasts when the operator sets nothing. */
export const DEFAULT_ADMISSION_TTL_SECONDS = 120;

export interface WaitingRoomSettings {
  /** Tickets admitted per second from the sale's opening (null: only the cap below). */
  admissionsPerSecond: number | null;
  /**
   * At most this many admissions outstanding (admitted, not yet expired) per unit left to
   * sell, e.g. 1.5 (null: only the rate above).
   */
  admissionsPerUnitLeft: number | null;
  admissionTtlSeconds: number;
}

/**
 * A SKU's own rate limits, each a rate and its burst, which replace the deployment's for
 * purchases, joins and polls of the SKU. An absent pair is the deployment's; a rate of 0
 * lifts the limit for the SKU.
 */
export interface SkuRateLimits {
  /** Per buyer; absent: RATE_LIMIT_BUYER_PER_S / RATE_LIMIT_BUYER_BURST. */
  buyerPerSecond?: number;
  buyerBurst?: number;
  /** Per client address; absent: RATE_LIMIT_CLIENT_PER_S / RATE_LIMIT_CLIENT_BURST. */
  clientPerSecond?: number;
  clientBurst?: number;
}

export interface AdmissionSettings {
  /** null: no waiting room (the default). */
  waitingRoom: WaitingRoomSettings | null;
  qualificationRequired: boolean;
  /** null: the deployment's limits. */
  rateLimit: SkuRateLimits | null;
}

/** What an operator may send: every part optional (absent = off, default, or deployment's). */
export interface AdmissionInput {
  waitingRoom?:
    | {
        admissionsPerSecond?: number | undefined;
        admissionsPerUnitLeft?: number | undefined;
        admissionTtlSeconds?: number | undefined;
      }
    | null
    | undefined;
  qualificationRequired?: boolean | undefined;
  rateLimit?: SkuRateLimits | null | undefined;
}

/** The pairs a limit input gives, in one order (so equal settings compare equal). */
function rateLimits(r: SkuRateLimits | null | undefined): SkuRateLimits | null {
  if (!r) return null;
  const out: SkuRateLimits = {};
  if (r.buyerPerSecond !== undefined && r.buyerBurst !== undefined) {
    out.buyerPerSecond = r.buyerPerSecond;
    out.buyerBurst = r.buyerBurst;
  }
  if (r.clientPerSecond !== undefined && r.clientBurst !== undefined) {
    out.clientPerSecond = r.clientPerSecond;
    out.clientBurst = r.clientBurst;
  }
  return Object.keys(out).length ? out : null;
}

export const NO_ADMISSION_CONTROL: AdmissionSettings = {
  waitingRoom: null,
  qualificationRequired: false,
  rateLimit: null,
};

/** The settings an input means, defaults filled in. */
export function admissionSettings(input: AdmissionInput): AdmissionSettings {
  const w = input.waitingRoom;
  return {
    waitingRoom: w
      ? {
          admissionsPerSecond: w.admissionsPerSecond ?? null,
          admissionsPerUnitLeft: w.admissionsPerUnitLeft ?? null,
          admissionTtlSeconds: w.admissionTtlSeconds ?? DEFAULT_ADMISSION_TTL_SECONDS,
        }
      : null,
    qualificationRequired: input.qualificationRequired ?? false,
    rateLimit: rateLimits(input.rateLimit),
  };
}

type AdmissionColumns = Pick<
  Sku,
  | 'waitingRoom'
  | 'admissionsPerSecond'
  | 'admissionsPerUnitLeft'
  | 'admissionTtlSeconds'
  | 'qualificationRequired'
  | 'buyerRatePerSecond'
  | 'buyerBurst'
  | 'clientRatePerSecond'
  | 'clientBurst'
>;

/** The `skus` columns of the settings. Off means null rates and the default TTL. */
export function admissionColumns(s: AdmissionSettings): AdmissionColumns {
  return {
    waitingRoom: s.waitingRoom !== null,
    admissionsPerSecond: s.waitingRoom?.admissionsPerSecond ?? null,
    admissionsPerUnitLeft: s.waitingRoom?.admissionsPerUnitLeft ?? null,
    admissionTtlSeconds: s.waitingRoom?.admissionTtlSeconds ?? DEFAULT_ADMISSION_TTL_SECONDS,
    qualificationRequired: s.qualificationRequired,
    buyerRatePerSecond: s.rateLimit?.buyerPerSecond ?? null,
    buyerBurst: s.rateLimit?.buyerBurst ?? null,
    clientRatePerSecond: s.rateLimit?.clientPerSecond ?? null,
    clientBurst: s.rateLimit?.clientBurst ?? null,
  };
}

export function admissionFromRow(row: AdmissionColumns): AdmissionSettings {
  return {
    waitingRoom: row.waitingRoom
      ? {
          admissionsPerSecond: row.admissionsPerSecond,
          admissionsPerUnitLeft: row.admissionsPerUnitLeft,
          admissionTtlSeconds: row.admissionTtlSeconds,
        }
      : null,
    qualificationRequired: row.qualificationRequired,
    rateLimit: rateLimits({
      buyerPerSecond: row.buyerRatePerSecond ?? undefined,
      buyerBurst: row.buyerBurst ?? undefined,
      clientPerSecond: row.clientRatePerSecond ?? undefined,
      clientBurst: row.clientBurst ?? undefined,
    }),
  };
}

export function sameAdmission(a: AdmissionSettings, b: AdmissionSettings): boolean {
  return JSON.stringify(admissionColumns(a)) === JSON.stringify(admissionColumns(b));
}

/** What a buyer must do before buying, as the SKU's `gate` field (or its absence) says. */
export function gatePasses(gate: string | null | undefined): {
  waitingRoom: boolean;
  qualificationRequired: boolean;
} {
  const passes = gate?.split('|', 1)[0] ?? '';
  return { waitingRoom: passes.includes('a'), qualificationRequired: passes.includes('q') };
}

/**
 * The SKU hash's fields for these settings, as field/value pairs; '' means "absent" (the
 * load script skips it, the change script deletes it). Off is absent, so a SKU without
 * admission control keeps the hash it always had. The purchase script reads only `gate`
 * (lua/includes/gate.lua: the passes a purchase needs and the SKU's own limits, packed so
 * a SKU without any costs one lookup); the queue scripts read the `admit*` fields too.
 */
export function admissionHashFields(s: AdmissionSettings): string[] {
  const w = s.waitingRoom;
  const num = (n: number | null | undefined) => (n === null || n === undefined ? '' : String(n));
  const passes = (w ? 'a' : '') + (s.qualificationRequired ? 'q' : '');
  const r = s.rateLimit;
  // Three parts unless the SKU limits client addresses: the form every engine version reads,
  // so instances not yet upgraded keep selling SKUs without a client limit of their own.
  const client =
    r?.clientPerSecond === undefined ? '' : `|${num(r.clientPerSecond)}|${num(r.clientBurst)}`;
  const gate =
    passes || r ? `${passes}|${num(r?.buyerPerSecond)}|${num(r?.buyerBurst)}${client}` : '';
  return [
    'gate',
    gate,
    'admitRate',
    num(w?.admissionsPerSecond),
    'admitPerUnit',
    num(w?.admissionsPerUnitLeft),
    'admitTtl',
    num(w?.admissionTtlSeconds),
  ];
}
