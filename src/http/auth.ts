// Buyer authentication (JWT, HS256, user id in `sub`) and admin authentication (a static
// bearer token compared in constant time).
import { createHash, timingSafeEqual } from 'node:crypto';
import { errors as joseErrors, jwtVerify } from 'jose';
import { AppError } from '../shared/errors.js';
import { ID_PATTERN } from '../shared/keys.js';

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
  private readonly key: Uint8Array;
  private readonly adminDigest: Buffer;
  /** Verified tokens (token -> user, expiry): a flash sale sees the same token many times. */
  private readonly verified = new Map<string, { userId: string; expMs: number }>();

  constructor(
    jwtSecret: string,
    adminToken: string,
    private readonly cacheSize = 50000,
  ) {
    this.key = new TextEncoder().encode(jwtSecret);
    this.adminDigest = digest(adminToken);
  }

  private isAdminToken(token: string): boolean {
    return timingSafeEqual(digest(token), this.adminDigest);
  }

  /** A buyer's user id, from a valid JWT. */
  async buyer(header: string | undefined): Promise<string> {
    const token = bearer(header);
    const cached = this.verified.get(token);
    if (cached) {
      if (cached.expMs > Date.now()) return cached.userId;
      this.verified.delete(token);
      throw new AppError('UNAUTHORIZED', 'The token has expired.');
    }
    if (this.isAdminToken(token))
      throw new AppError('FORBIDDEN', 'Admin credentials cannot act as a buyer.');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: ['HS256'],
        requiredClaims: ['sub', 'exp'],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired)
        throw new AppError('UNAUTHORIZED', 'The token has expired.');
      throw new AppError('UNAUTHORIZED', 'The token is not valid.');
    }
    const userId = payload.sub;
    if (!userId || !ID_PATTERN.test(userId))
      throw new AppError('UNAUTHORIZED', 'The token subject is not a valid user id.');
    if (this.verified.size >= this.cacheSize) this.verified.clear();
    this.verified.set(token, { userId, expMs: (payload.exp ?? 0) * 1000 });
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
  async authenticate(required: Auth, header: string | undefined): Promise<Principal | undefined> {
    switch (required) {
      case 'none':
        return undefined;
      case 'buyer':
        return { kind: 'buyer', userId: await this.buyer(header) };
      case 'admin':
        this.admin(header);
        return { kind: 'admin' };
      case 'buyer-or-admin':
        return this.principal(header);
    }
  }

  /** Buyers act as themselves; the admin token acts for anyone. */
  async principal(header: string | undefined): Promise<Principal> {
    const token = bearer(header);
    if (this.isAdminToken(token)) return { kind: 'admin' };
    return { kind: 'buyer', userId: await this.buyer(header) };
  }

  private looksLikeJwt(token: string): boolean {
    return token.split('.').length === 3;
  }
}
