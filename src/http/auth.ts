// Buyer authentication (JWT, HS256, user id in `sub`) and admin authentication (a static
// bearer token compared in constant time).
import { createHash, timingSafeEqual } from 'node:crypto';
import { createVerifier, TokenError } from 'fast-jwt';
import { AppError } from '../shared/errors.js';
import { ID_PATTERN } from '../shared/keys.js';
import { ADMISSION_AUDIENCE, QUALIFICATION_AUDIENCE, type Claims } from '../admission/tokens.js';

export type Principal = { kind: 'buyer'; userId: string } | { kind: 'admin' };

/** Who may call a route: its table entry says so, and the app enforces it. */
export type Auth = 'none' | 'buyer' | 'admin' | 'buyer-or-admin';

/** The buyer a principal acts as; undefined for the admin, who acts for anyone. */
export const buyerOf = (p: Principal | undefined): string | undefined =>
  p?.kind === 'buyer' ? p.userId : undefined;

function bearer(header: string | undefined): string {
  if (!header) throw new AppError('UNAUTHORIZED', 'The Authorization header is missing.');
  const match = /^Bearer ([A-Za-z0-9._~+/=-]{1,4096})$/.exec(header);
  if (!match?.[1])
    throw new AppError('UNAUTHORIZED', 'The Authorization header must be "Bearer <token>".');
  return match[1];
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export class Authenticator {
  /**
   * fast-jwt, synchronous on node:crypto's HMAC: a token seen for the first time costs
   * about 5 µs, where WebCrypto's job queue (jose) cost 65 to 100 µs.
   */
  private readonly verify: (token: string) => Claims;
  private readonly adminDigest: Buffer;
  /** Verified tokens (token -> user, expiry): a flash sale sees the same token many times. */
  private readonly verified = new Map<string, { userId: string; expMs: number }>();

  constructor(
    jwtSecret: string,
    adminToken: string,
    private readonly cacheSize = 50000,
  ) {
    this.verify = createVerifier({
      key: jwtSecret,
      algorithms: ['HS256'],
      requiredClaims: ['sub', 'exp'],
      cache: false, // verified tokens are cached below
    });
    this.adminDigest = digest(adminToken);
  }

  private isAdminToken(token: string): boolean {
    return timingSafeEqual(digest(token), this.adminDigest);
  }

  /** A buyer's user id, from a valid JWT. */
  buyer(header: string | undefined): string {
    const token = bearer(header);
    const cached = this.verified.get(token);
    if (cached) {
      if (cached.expMs > Date.now()) return cached.userId;
      this.verified.delete(token);
      throw new AppError('UNAUTHORIZED', 'The token has expired.');
    }
    if (this.isAdminToken(token))
      throw new AppError('FORBIDDEN', 'Admin credentials cannot act as a buyer.');
    let payload: Claims;
    try {
      payload = this.verify(token);
    } catch (err) {
      if (err instanceof TokenError && err.code === TokenError.codes.expired)
        throw new AppError('UNAUTHORIZED', 'The token has expired.');
      throw new AppError('UNAUTHORIZED', 'The token is not valid.');
    }
    // fast-jwt has checked that `exp` is there and a number (a date claim), not `sub`.
    const { sub: userId, exp, aud } = payload;
    // A pass is not a login, even where an operator gave both kinds one secret.
    const audiences = Array.isArray(aud) ? aud : [aud];
    if (audiences.some((a) => a === ADMISSION_AUDIENCE || a === QUALIFICATION_AUDIENCE))
      throw new AppError('UNAUTHORIZED', 'The token is not valid.');
    if (typeof userId !== 'string' || !ID_PATTERN.test(userId))
      throw new AppError('UNAUTHORIZED', 'The token subject is not a valid user id.');
    if (this.verified.size >= this.cacheSize) this.verified.clear();
    this.verified.set(token, { userId, expMs: (exp as number) * 1000 });
    return userId;
  }

  admin(header: string | undefined): void {
    const token = bearer(header);
    if (this.isAdminToken(token)) return;
    throw new AppError(
      this.looksLikeJwt(token) ? 'FORBIDDEN' : 'UNAUTHORIZED',
      this.looksLikeJwt(token) ? 'Admin credentials are required.' : undefined,
    );
  }

  /**
   * Enforces what a route's table entry says (`RouteSpec.auth`): the one place a route's
   * credentials are checked, so the OpenAPI document and the checks cannot drift apart.
   */
  authenticate(required: Auth, header: string | undefined): Principal | undefined {
    switch (required) {
      case 'none':
        return undefined;
      case 'buyer':
        return { kind: 'buyer', userId: this.buyer(header) };
      case 'admin':
        this.admin(header);
        return { kind: 'admin' };
      case 'buyer-or-admin':
        return this.principal(header);
    }
  }

  /** Buyers act as themselves; the admin token acts for anyone. */
  principal(header: string | undefined): Principal {
    const token = bearer(header);
    if (this.isAdminToken(token)) return { kind: 'admin' };
    return { kind: 'buyer', userId: this.buyer(header) };
  }

  private looksLikeJwt(token: string): boolean {
    return token.split('.').length === 3;
  }
}
