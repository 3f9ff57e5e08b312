// The two signed passes a purchase may need, both HS256 JWTs bound to one buyer and one
// SKU, and expiring:
// - an Admission-Token, signed by the engine when the SKU's waiting room admits a ticket;
// - a Qualification-Token, signed by the seller's own system (a secret it shares with the
//   engine) for a SKU that requires one.
// Each kind has its own secret and audience, so neither passes for the other, nor for a
// buyer's login token. Also the signature of a waiting-room ticket's place in line.
//
// Signed and verified with fast-jwt, synchronously on node:crypto's HMAC: a pass seen for
// the first time costs about 5 µs to verify, where WebCrypto's job queue (jose) cost 65 to
// 100 µs. At a sale's opening almost every purchase carries passes not seen before.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createSigner, createVerifier, TokenError } from 'fast-jwt';

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

/** A verified token's claims (fast-jwt's decoder answers only a JSON object). */
export type Claims = Record<string, unknown>;

/** A verifier of one kind of pass: its secret, its audience, and the claims it needs. */
type Verify = (token: string) => Claims;

const verifierOf = (secret: string, audience: string): Verify =>
  createVerifier({
    key: secret,
    algorithms: ['HS256'],
    allowedAud: audience,
    // `aud` too: fast-jwt checks an allowed audience only when the claim is there.
    requiredClaims: ['sub', 'exp', 'sku', 'aud'],
    cache: false, // the verified passes are cached below, by kind
  });

/** A signer of one kind of pass: HS256 under its secret, with its audience. */
const signerOf = (secret: string, audience: string) =>
  createSigner({ key: secret, algorithm: 'HS256', aud: audience });

export class PassTokens {
  private readonly admissionKey: string;
  private readonly verifyAdmission: Verify;
  private readonly verifyQualification: Verify;
  private readonly signAdmissionToken: (payload: Record<string, unknown>) => string;
  private readonly signQualificationToken: (payload: Record<string, unknown>) => string;
  /** Verified tokens, one map per kind: a buyer sends the same pass with every retry. */
  private readonly admitted = new Map<string, Pass>();
  private readonly qualified = new Map<string, Pass>();

  constructor(
    admissionSecret: string,
    qualificationSecret: string,
    /** Passes remembered, per kind. */
    private readonly cacheSize = 25_000,
  ) {
    this.admissionKey = admissionSecret;
    this.verifyAdmission = verifierOf(admissionSecret, ADMISSION_AUDIENCE);
    this.verifyQualification = verifierOf(qualificationSecret, QUALIFICATION_AUDIENCE);
    this.signAdmissionToken = signerOf(admissionSecret, ADMISSION_AUDIENCE);
    this.signQualificationToken = signerOf(qualificationSecret, QUALIFICATION_AUDIENCE);
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
  signAdmission(p: { buyer: string; sku: string; ticket: string; expiresAtMs: number }): string {
    return this.signAdmissionToken({
      sku: p.sku,
      tid: p.ticket,
      sub: p.buyer,
      exp: Math.floor(p.expiresAtMs / 1000),
    });
  }

  /** What the seller's system does (tests and the demo use it): a Qualification-Token. */
  signQualification(p: { buyer: string; sku: string; expiresAtMs: number }): string {
    return this.signQualificationToken({
      sku: p.sku,
      sub: p.buyer,
      exp: Math.floor(p.expiresAtMs / 1000),
    });
  }

  /** Whether `token` admits `buyer` to buy `sku` now. Never throws. */
  admits(token: string | undefined, buyer: string, sku: string): boolean {
    return this.check(token, buyer, sku, this.admitted, this.verifyAdmission);
  }

  /** Whether `token` qualifies `buyer` for `sku` now. Never throws. */
  qualifies(token: string | undefined, buyer: string, sku: string): boolean {
    return this.check(token, buyer, sku, this.qualified, this.verifyQualification);
  }

  private check(
    token: string | undefined,
    buyer: string,
    sku: string,
    verified: Map<string, Pass>,
    verify: Verify,
  ): boolean {
    if (!token || token.length > 4096) return false;
    let pass = verified.get(token);
    if (!pass) {
      pass = passOf(token, verify);
      if (!pass) return false;
      if (verified.size >= this.cacheSize) verified.clear();
      verified.set(token, pass);
    }
    if (pass.expiresAtMs <= Date.now()) {
      verified.delete(token);
      return false;
    }
    return pass.buyer === buyer && pass.sku === sku;
  }
}

/** The pass a token carries, when its signature, audience, claims and expiry are good. */
function passOf(token: string, verify: Verify): Pass | undefined {
  let payload: Claims;
  try {
    payload = verify(token);
  } catch (err) {
    if (err instanceof TokenError) return undefined;
    throw err;
  }
  // fast-jwt has checked that `exp` is there and a number (a date claim), not the others.
  const { sub, sku, tid, exp } = payload;
  if (typeof sub !== 'string' || typeof sku !== 'string') return undefined;
  return {
    buyer: sub,
    sku,
    ...(typeof tid === 'string' ? { ticket: tid } : {}),
    expiresAtMs: (exp as number) * 1000,
  };
}
