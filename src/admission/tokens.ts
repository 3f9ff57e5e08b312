// The two signed passes a purchase may need, both HS256 JWTs bound to one buyer and one
// SKU, and expiring:
// - an Admission-Token, signed by the engine when the SKU's waiting room admits a ticket;
// - a Qualification-Token, signed by the seller's own system (a secret it shares with the
//   engine) for a SKU that requires one.
// Each kind has its own secret and audience, so neither passes for the other, nor for a
// buyer's login token. Also the signature of a waiting-room ticket's place in line.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';

export const ADMISSION_AUDIENCE = 'flashsale:admission';
export const QUALIFICATION_AUDIENCE = 'flashsale:qualification';

/** What a waiting-room ticket's signature covers. */
export interface TicketFields {
  buyer: string;
  sku: string;
  /** The ticket's id in Redis. */
  id: string;
  /** Its score in the line, as the join script wrote it. */
  place: string;
  /** The queue's epoch when the ticket was handed out. */
  epoch: string;
}

/** A verified pass: for whom, for what, until when. */
export interface Pass {
  buyer: string;
  sku: string;
  /** The waiting-room ticket an admission was given for (admission passes only). */
  ticket?: string;
  expiresAtMs: number;
}

export class PassTokens {
  private readonly admissionKey: Uint8Array;
  private readonly qualificationKey: Uint8Array;
  /** Verified tokens: a buyer sends the same pass with every retry. */
  private readonly verified = new Map<string, Pass>();

  constructor(
    admissionSecret: string,
    qualificationSecret: string,
    private readonly cacheSize = 50_000,
  ) {
    this.admissionKey = new TextEncoder().encode(admissionSecret);
    this.qualificationKey = new TextEncoder().encode(qualificationSecret);
  }

  /**
   * The signature of a waiting-room ticket's place (see waiting-room.ts): HMAC-SHA256 under
   * the admission secret, over a label no JWT starts with, cut to 128 bits.
   */
  ticketSignature(t: TicketFields): string {
    return createHmac('sha256', this.admissionKey)
      .update(`flashsale:ticket\n${t.sku}\n${t.buyer}\n${t.id}\n${t.place}\n${t.epoch}`)
      .digest('base64url')
      .slice(0, 22);
  }

  /** Whether `signature` is this ticket's (in constant time). */
  ticketSigned(t: TicketFields, signature: string): boolean {
    const expected = Buffer.from(this.ticketSignature(t));
    const given = Buffer.from(signature);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** The Admission-Token of an admitted ticket. */
  signAdmission(p: { buyer: string; sku: string; ticket: string; expiresAtMs: number }) {
    return new SignJWT({ sku: p.sku, tid: p.ticket })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(p.buyer)
      .setAudience(ADMISSION_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(Math.floor(p.expiresAtMs / 1000))
      .sign(this.admissionKey);
  }

  /** What the seller's system does (tests and the demo use it): a Qualification-Token. */
  signQualification(p: { buyer: string; sku: string; expiresAtMs: number }) {
    return new SignJWT({ sku: p.sku })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(p.buyer)
      .setAudience(QUALIFICATION_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(Math.floor(p.expiresAtMs / 1000))
      .sign(this.qualificationKey);
  }

  /**
   * Whether `token` admits `buyer` to buy `sku` now. Never throws. A pass verified before
   * is answered at once (no promise): the purchase route checks two on every request.
   */
  admits(token: string | undefined, buyer: string, sku: string): boolean | Promise<boolean> {
    return this.check(token, buyer, sku, ADMISSION_AUDIENCE, this.admissionKey);
  }

  /** Whether `token` qualifies `buyer` for `sku` now. Never throws; at once when cached. */
  qualifies(token: string | undefined, buyer: string, sku: string): boolean | Promise<boolean> {
    return this.check(token, buyer, sku, QUALIFICATION_AUDIENCE, this.qualificationKey);
  }

  private check(
    token: string | undefined,
    buyer: string,
    sku: string,
    audience: string,
    key: Uint8Array,
  ): boolean | Promise<boolean> {
    if (!token || token.length > 4096) return false;
    const cacheKey = `${audience} ${token}`;
    const cached = this.verified.get(cacheKey);
    if (cached) return this.holds(cached, cacheKey, buyer, sku);
    return verify(token, audience, key).then((pass) => {
      if (!pass) return false;
      if (this.verified.size >= this.cacheSize) this.verified.clear();
      this.verified.set(cacheKey, pass);
      return this.holds(pass, cacheKey, buyer, sku);
    });
  }

  private holds(pass: Pass, cacheKey: string, buyer: string, sku: string): boolean {
    if (pass.expiresAtMs <= Date.now()) {
      this.verified.delete(cacheKey);
      return false;
    }
    return pass.buyer === buyer && pass.sku === sku;
  }
}

async function verify(token: string, audience: string, key: Uint8Array): Promise<Pass | undefined> {
  try {
    const { payload } = await jwtVerify(token, key, {
      algorithms: ['HS256'],
      audience,
      requiredClaims: ['sub', 'exp', 'sku'],
    });
    if (typeof payload.sub !== 'string' || typeof payload.sku !== 'string') return undefined;
    return {
      buyer: payload.sub,
      sku: payload.sku,
      ...(typeof payload.tid === 'string' ? { ticket: payload.tid } : {}),
      expiresAtMs: (payload.exp ?? 0) * 1000,
    };
  } catch (err) {
    if (err instanceof joseErrors.JOSEError) return undefined;
    throw err;
  }
}
