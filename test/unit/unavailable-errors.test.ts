// Which failures mean "a backing service cannot be reached" (503 SERVICE_UNAVAILABLE) and
// which are bugs (500 INTERNAL): the one mapping sendError uses for every route.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReplyError } from 'ioredis';
import { unavailableService } from '../../src/http/respond.js';

const withProps = (message: string, props: Record<string, unknown>, name = 'Error') =>
  Object.assign(new Error(message), props, { name });

/** What @prisma/adapter-pg raises: the driver's error kind under meta. */
const driver = (kind: string) =>
  withProps('Raw query failed', {
    code: 'P2010',
    meta: { driverAdapterError: { cause: { kind } } },
  });

describe('backing-service-unreachable errors', () => {
  it('recognises Redis timeouts, closed connections, retries exhausted and busy or loading servers', () => {
    for (const err of [
      new Error('Command timed out'),
      new Error('Connection is closed.'),
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      // ioredis does not export the class; this is its name and message.
      withProps(
        'Reached the max retries per request limit (which is 1).',
        {},
        'MaxRetriesPerRequestError',
      ),
      new ReplyError('LOADING Redis is loading the dataset in memory'),
      new ReplyError('BUSY Redis is busy running a script.'),
      new ReplyError("READONLY You can't write against a read only replica."),
    ])
      assert.equal(unavailableService(err), 'redis', err.message);
  });

  it('recognises PostgreSQL unreachable through Prisma and node-postgres', () => {
    for (const err of [
      withProps("Can't reach database server", { code: 'P1001' }),
      withProps('Timed out fetching a new connection from the connection pool', { code: 'P2024' }),
      driver('DatabaseNotReachable'),
      driver('ConnectionClosed'),
      new Error('Connection terminated due to connection timeout'),
      new Error('Connection terminated unexpectedly'),
    ])
      assert.equal(unavailableService(err), 'postgres', err.message);
  });

  it('recognises Kafka brokers that cannot be reached', () => {
    assert.equal(unavailableService(withProps('x', {}, 'KafkaJSConnectionError')), 'kafka');
    assert.equal(unavailableService(withProps('x', {}, 'KafkaJSNumberOfRetriesExceeded')), 'kafka');
  });

  it('leaves everything else to be a 500: script errors, constraint violations, bugs', () => {
    for (const err of [
      new ReplyError('ERR user_script:1: attempt to compare nil with number'),
      withProps('Unique constraint failed', { code: 'P2002' }),
      driver('UniqueConstraintViolation'),
      new TypeError("Cannot read properties of undefined (reading 'x')"),
      'a string',
      undefined,
    ])
      assert.equal(unavailableService(err), undefined, String(err));
  });
});
