// The admin command line's only way to the engine: its public REST API over global fetch,
// with the admin bearer token. Failures come out as two kinds the caller maps to exit codes:
// the engine answered with an error (ApiError), or it could not be reached (UnreachableError).

/** The engine answered, and refused: its `{ error: { code, message, ... } }` body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly details: Record<string, unknown> | undefined,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Nothing answered at the URL (refused, unknown host, no answer in time). */
export class UnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach the engine at ${url}: ${reason}`);
    this.name = 'UnreachableError';
  }
}

export interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_SOCKET: 'connection closed',
};

/** Why fetch failed, in words: undici hides the socket error in `cause` (or its `errors`). */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause as
    { code?: unknown; message?: unknown; errors?: { code?: unknown }[] } | undefined;
  const code = cause?.code ?? cause?.errors?.[0]?.code;
  if (typeof code === 'string') return `${NETWORK_REASONS[code] ?? 'network error'} (${code})`;
  if (typeof cause?.message === 'string') return cause.message;
  return err instanceof Error ? err.message : String(err);
}

function errorOf(status: number, body: unknown, text: string): ApiError {
  const e = (body as { error?: Record<string, unknown> } | undefined)?.error;
  if (e && typeof e.code === 'string') {
    return new ApiError(
      status,
      e.code,
      typeof e.message === 'string' ? e.message : '',
      e.retryable === true,
      e.details && typeof e.details === 'object'
        ? (e.details as Record<string, unknown>)
        : undefined,
    );
  }
  // Not the engine's error shape: a proxy or something else answering at that URL.
  const excerpt = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return new ApiError(
    status,
    `HTTP_${status}`,
    `unexpected answer${excerpt ? `: ${excerpt}` : ''}`,
    status >= 500,
    undefined,
  );
}

export class AdminClient {
  /** Always ends with '/', so a base with a path prefix (behind a proxy) keeps it. */
  private readonly base: URL;

  constructor(
    baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs: number,
  ) {
    this.base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
  }

  /** The base URL as the operator gave it, for messages. */
  get url(): string {
    return this.base.href.replace(/\/$/, '');
  }

  /**
   * `path` is relative to the base, e.g. `v1/admin/alerts`; a 2xx answer or a thrown error.
   * `signal` lets the caller abandon the request (Ctrl-C); its abort error is thrown as is.
   */
  async request(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    body?: unknown,
    opts: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<Answer> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const timeout = AbortSignal.timeout(timeoutMs);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.token}`,
      accept: 'application/json',
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(new URL(path, this.base), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout,
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const reason = timeout.aborted
        ? `no answer within ${Math.round(timeoutMs / 1000)} s`
        : networkReason(err);
      throw new UnreachableError(this.url, reason);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if (!res.ok) throw errorOf(res.status, parsed, text);
    if (parsed === undefined && text !== '') throw errorOf(res.status, undefined, text);
    return { status: res.status, headers: res.headers, body: parsed };
  }
}

/** A path segment the operator typed (a SKU id), so '/' or '?' cannot reach another route. */
export const segment = (value: string) => encodeURIComponent(value);
