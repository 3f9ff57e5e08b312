// A buyer's side of a waiting room over HTTP, for the tests that drive one: join, poll, and
// the ticket view both answer with.
import type { RunningApi } from '../helpers.js';

export interface Ticket {
  ticket: string;
  status: 'waiting' | 'admitted' | 'closed' | 'expired';
  position: number | null;
  estimatedWaitSeconds: number | null;
  admissionToken?: string;
  admittedUntil?: string;
}

export type Answer<T> = {
  status: number;
  body: T & { error?: { code: string } };
  headers: Headers;
};

export async function call<T>(
  api: RunningApi,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<Answer<T>> {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return {
    status: res.status,
    body: (await res.json()) as Answer<T>['body'],
    headers: res.headers,
  };
}

export const bearer = (jwt: string) => ({ authorization: `Bearer ${jwt}` });

export function join(api: RunningApi, sku: string, jwt: string, qualification?: string) {
  return call<Ticket>(api, 'POST', `/v1/skus/${sku}/queue`, {
    ...bearer(jwt),
    ...(qualification ? { 'qualification-token': qualification } : {}),
  });
}

export function poll(api: RunningApi, sku: string, jwt: string, ticket: string) {
  return call<Ticket>(api, 'GET', `/v1/skus/${sku}/queue/${ticket}`, bearer(jwt));
}
