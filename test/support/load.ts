// A drill's client: a POST whose answer was lost (process crashed or restarting, Redis
// away, any 5xx) is sent again, unchanged (so with the same Idempotency-Key), a while.
import { setTimeout as sleep } from 'node:timers/promises';

export async function postRetrying<T>(
  baseUrl: () => string | Promise<string>,
  path: string,
  jwt: string,
  headers: Record<string, string>,
  body: string | undefined,
  tries: number,
): Promise<{ status: number; body: T }> {
  for (let i = 0; i < tries; i++) {
    try {
      const res = await fetch(`${await baseUrl()}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${jwt}`, ...headers },
        ...(body ? { body } : {}),
        signal: AbortSignal.timeout(5000),
      });
      if (res.status >= 500) throw new Error(`status ${res.status}`);
      return { status: res.status, body: (await res.json()) as T };
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`gave up on ${path}`);
}
