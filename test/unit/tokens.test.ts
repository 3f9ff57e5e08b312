// The engine's JWT checks, with no service: buyer tokens (Authenticator) and the two passes
// (PassTokens). Tokens are signed here with jose, a second JWT library, as a seller's login
// service or qualification system would: what the engine takes is a standard HS256 JWT,
// and what it refuses is refused whoever signed it.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { SignJWT, type JWTPayload } from 'jose';
import { AppError } from '../../src/shared/errors.js';
import { Authenticator } from '../../src/http/auth.js';
import {
  ADMISSION_AUDIENCE,
  PassTokens,
  QUALIFICATION_AUDIENCE,
} from '../../src/admission/tokens.js';

const JWT_SECRET = 'j'.repeat(40);
const ADMISSION_SECRET = 'a'.repeat(40);
const QUALIFICATION_SECRET = 'q'.repeat(40);
const inAnHour = () => Math.floor(Date.now() / 1000) + 3600;

function sign(
  claims: JWTPayload,
  secret: string,
  header: { alg: string; typ?: string } = { alg: 'HS256' },
): Promise<string> {
  return new SignJWT(claims).setProtectedHeader(header).sign(new TextEncoder().encode(secret));
}

/** A JWT's header and claims, encoded: what its signature covers. */
const encoded = (alg: string, claims: object) =>
  [{ alg, typ: 'JWT' }, claims]
    .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
    .join('.');

/** A token with claims as given and no signature algorithm at all. */
const unsigned = (claims: object) => `${encoded('none', claims)}.`;

/** `claims` signed as HS256 by hand, for claims jose will not write (a non-string sub). */
function handSigned(claims: object, secret: string): string {
  const body = encoded('HS256', claims);
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}

function refusal(auth: Authenticator, token: string): string {
  try {
    auth.buyer(`Bearer ${token}`);
  } catch (err) {
    assert.ok(err instanceof AppError, String(err));
    return `${err.code}: ${err.message}`;
  }
  return 'accepted';
}

describe('buyer tokens', () => {
  const auth = new Authenticator(JWT_SECRET, 'admin-token-that-is-long-enough-000000');

  it('takes an HS256 token signed by another library, and remembers it', async () => {
    const token = await sign({ sub: 'alice', exp: inAnHour() }, JWT_SECRET);
    assert.equal(auth.buyer(`Bearer ${token}`), 'alice');
    assert.equal(auth.buyer(`Bearer ${token}`), 'alice');
  });

  it('refuses every token that is not a valid, live HS256 token for a valid user id', async () => {
    const exp = inAnHour();
    const cases: [string, string | Promise<string>][] = [
      ['expired', sign({ sub: 'alice', exp: Math.floor(Date.now() / 1000) - 10 }, JWT_SECRET)],
      ['no expiry', sign({ sub: 'alice' }, JWT_SECRET)],
      ['no subject', sign({ exp }, JWT_SECRET)],
      ['a subject that is not an id', sign({ sub: 'a{b}', exp }, JWT_SECRET)],
      ['a subject that is not a string', handSigned({ sub: 42, exp }, JWT_SECRET)],
      ['another secret', sign({ sub: 'alice', exp }, 'x'.repeat(40))],
      ['HS384', sign({ sub: 'alice', exp }, JWT_SECRET, { alg: 'HS384' })],
      ['alg none', unsigned({ sub: 'alice', exp })],
      ['not yet valid', sign({ sub: 'alice', exp, nbf: exp - 60 }, JWT_SECRET)],
      ['not a JWT', 'abc.def.ghi'],
    ];
    for (const [name, token] of cases) {
      const answer = refusal(auth, await token);
      assert.match(answer, /^UNAUTHORIZED: /, name);
    }
    assert.equal(
      refusal(auth, await cases[0]![1]),
      'UNAUTHORIZED: The token has expired.',
      'an expired token says so',
    );
  });

  it('takes no pass as a login, no login as a pass, and no pass for the other kind, even with one secret for all', async () => {
    const passes = new PassTokens(JWT_SECRET, JWT_SECRET);
    const withSku = await sign({ sub: 'alice', sku: 'sku-1', exp: inAnHour() }, JWT_SECRET);
    assert.equal(passes.admits(withSku, 'alice', 'sku-1'), false, 'no audience, no pass');
    assert.equal(passes.qualifies(withSku, 'alice', 'sku-1'), false, 'no audience, no pass');
    const expiresAtMs = inAnHour() * 1000;
    const admission = passes.signAdmission({
      buyer: 'alice',
      sku: 'sku-1',
      ticket: 't',
      expiresAtMs,
    });
    const qualification = passes.signQualification({ buyer: 'alice', sku: 'sku-1', expiresAtMs });
    assert.equal(passes.admits(qualification, 'alice', 'sku-1'), false, 'a qualification');
    assert.equal(passes.qualifies(admission, 'alice', 'sku-1'), false, 'an admission');
    for (const pass of [admission, qualification])
      assert.equal(refusal(auth, pass), 'UNAUTHORIZED: The token is not valid.');
  });
});

describe('passes', () => {
  const passes = new PassTokens(ADMISSION_SECRET, QUALIFICATION_SECRET);
  const exp = inAnHour();

  it('verify at once, whoever signed them, for their buyer and SKU only', async () => {
    const qualification = await sign(
      { sub: 'alice', sku: 'sku-1', aud: QUALIFICATION_AUDIENCE, exp },
      QUALIFICATION_SECRET,
    );
    // A boolean, not a promise: the purchase route checks passes without waiting.
    assert.equal(passes.qualifies(qualification, 'alice', 'sku-1'), true);
    assert.equal(passes.qualifies(qualification, 'bob', 'sku-1'), false, 'another buyer');
    assert.equal(passes.qualifies(qualification, 'alice', 'sku-2'), false, 'another SKU');
    assert.equal(passes.admits(qualification, 'alice', 'sku-1'), false, 'not an admission');

    const admission = passes.signAdmission({
      buyer: 'alice',
      sku: 'sku-1',
      ticket: 't1',
      expiresAtMs: exp * 1000,
    });
    assert.equal(passes.admits(admission, 'alice', 'sku-1'), true);
    assert.equal(passes.qualifies(admission, 'alice', 'sku-1'), false, 'not a qualification');
    assert.equal(passes.admits(admission, 'alice', 'sku-1'), true, 'again, from the cache');
  });

  it('refuse the lapsed, the tampered, the unsigned and the incomplete', async () => {
    const good = { sub: 'alice', sku: 'sku-1', aud: QUALIFICATION_AUDIENCE, exp };
    const token = await sign(good, QUALIFICATION_SECRET);
    const [h, , s] = token.split('.');
    const otherBody = Buffer.from(JSON.stringify({ ...good, sku: 'sku-2' })).toString('base64url');
    const cases: [string, string | Promise<string>][] = [
      ['lapsed', sign({ ...good, exp: Math.floor(Date.now() / 1000) - 1 }, QUALIFICATION_SECRET)],
      ['no expiry', sign({ ...good, exp: undefined }, QUALIFICATION_SECRET)],
      ['no audience', sign({ ...good, aud: undefined }, QUALIFICATION_SECRET)],
      ['another audience', sign({ ...good, aud: ADMISSION_AUDIENCE }, QUALIFICATION_SECRET)],
      ['no SKU', sign({ ...good, sku: undefined }, QUALIFICATION_SECRET)],
      ['another secret', sign(good, ADMISSION_SECRET)],
      ['HS512', sign(good, QUALIFICATION_SECRET, { alg: 'HS512' })],
      ['alg none', unsigned(good)],
      ['the body swapped', `${h}.${otherBody}.${s}`],
      ['the signature cut', token.slice(0, -2)],
      ['too long', sign({ ...good, pad: 'x'.repeat(4096) }, QUALIFICATION_SECRET)],
      ['empty', ''],
    ];
    for (const [name, t] of cases) {
      const pass = await t;
      assert.equal(passes.qualifies(pass, 'alice', 'sku-1'), false, name);
      assert.equal(passes.qualifies(pass, 'alice', 'sku-2'), false, name);
    }
    assert.equal(passes.qualifies(undefined, 'alice', 'sku-1'), false, 'absent');
  });

  it('lapse while cached', () => {
    const soon = Date.now() + 5000;
    const pass = passes.signQualification({ buyer: 'bob', sku: 'sku-1', expiresAtMs: soon });
    assert.equal(passes.qualifies(pass, 'bob', 'sku-1'), true);
    const realNow = Date.now;
    Date.now = () => soon + 1;
    try {
      assert.equal(passes.qualifies(pass, 'bob', 'sku-1'), false);
    } finally {
      Date.now = realNow;
    }
  });
});
