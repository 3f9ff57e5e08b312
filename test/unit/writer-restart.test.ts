// The DB writer restarts its Kafka consumer after a crash kafkajs will not restart itself.
// kafkajs restarts only after errors it deems retriable; after any other (for one,
// KafkaJSGroupCoordinatorNotFound when the consumer joins its group while a restarted
// broker still loads the group's coordinator) it leaves the consumer disconnected, and the
// writer's process stayed alive while no event reached PostgreSQL again (found by the
// model-based soak: Kafka lag 2 for minutes after a stop of Kafka). The window is a few
// hundred milliseconds of a broker's start-up, too narrow to hit on purpose with a real
// broker (four restarts of a broker with a writer joining as it came back did not), so the
// consumer is stubbed here: a pure unit test of the writer's reaction to kafkajs's crash
// event. The soak story that found it is in the commit that added this test.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer } from 'kafkajs';
import type { Db } from '../../src/clients/db.js';
import { DbWriter } from '../../src/pipeline/writer.js';
import { createLogger } from '../../src/shared/log.js';

type Listener = (event: { payload: { error: Error; restart?: boolean } }) => void;

/** A consumer that records how often it was run, and crashes when told to. */
function stubConsumer() {
  const listeners = new Map<string, Listener[]>();
  /** runMs: how long a run takes to start (joining the group); ended: runs that returned. */
  const state = { runs: 0, runMs: 0, ended: 0, disconnectedAfter: -1 };
  const consumer = {
    events: { CRASH: 'consumer.crash', GROUP_JOIN: 'consumer.group_join' },
    on: (name: string, listener: Listener) => {
      listeners.set(name, [...(listeners.get(name) ?? []), listener]);
      return () => undefined;
    },
    connect: async () => undefined,
    subscribe: async () => undefined,
    disconnect: async () => {
      state.disconnectedAfter = state.ended;
    },
    run: async () => {
      state.runs += 1;
      await sleep(state.runMs);
      state.ended += 1;
    },
  };
  const emit = (name: string, payload: { error: Error; restart?: boolean }) => {
    for (const l of listeners.get(name) ?? []) l({ payload });
  };
  return {
    consumer: consumer as unknown as Consumer,
    state,
    /** What kafkajs does when a consumer crashes: it disconnects it, then says whether it restarts it. */
    crash: (restart: boolean) =>
      emit('consumer.crash', {
        error: Object.assign(new Error('Failed to find group coordinator'), {
          name: 'KafkaJSGroupCoordinatorNotFound',
        }),
        restart,
      }),
    joined: () => emit('consumer.group_join', { error: new Error('unused') }),
  };
}

/** A writer started on a stub consumer; a consumer 200 ms in its group counts as stable. */
async function started() {
  const stub = stubConsumer();
  const writer = new DbWriter(
    {} as Db,
    stub.consumer,
    { topic: 't', maxBatch: 10, concurrency: 1, restartStableMs: 200 },
    createLogger('silent'),
  );
  await writer.start();
  return { stub, writer };
}

describe('the DB writer after its Kafka consumer crashed', () => {
  it('runs the consumer again when kafkajs will not', async () => {
    const { stub, writer } = await started();
    assert.equal(stub.state.runs, 1);
    stub.crash(false);
    await sleep(600);
    assert.equal(stub.state.runs, 2, 'restarted after its backoff');
    stub.crash(false);
    await sleep(200);
    assert.equal(stub.state.runs, 2, 'a second crash in a row waits longer');
    await sleep(500);
    assert.equal(stub.state.runs, 3);
    await writer.stop();
  });

  it('leaves a crash kafkajs restarts itself to kafkajs', async () => {
    const { stub, writer } = await started();
    stub.crash(true);
    await sleep(600);
    assert.equal(stub.state.runs, 1);
    await writer.stop();
  });

  it('starts the backoff over once the consumer has stayed in its group a while', async () => {
    const { stub, writer } = await started();
    stub.crash(false);
    await sleep(600);
    stub.crash(false);
    await sleep(700);
    assert.equal(stub.state.runs, 3);
    stub.joined();
    await sleep(300);
    stub.crash(false);
    await sleep(400);
    assert.equal(stub.state.runs, 4, 'back to the first, short wait');
    await writer.stop();
  });

  it('keeps backing off a consumer that joins and crashes at once', async () => {
    const { stub, writer } = await started();
    stub.crash(false);
    await sleep(400);
    assert.equal(stub.state.runs, 2);
    stub.joined();
    stub.crash(false);
    await sleep(350);
    assert.equal(stub.state.runs, 2, 'still waiting: the join did not last');
    await sleep(300);
    assert.equal(stub.state.runs, 3);
    await writer.stop();
  });

  it('lets a restarted consumer finish starting before it disconnects, when stopped meanwhile', async () => {
    const { stub, writer } = await started();
    stub.state.runMs = 500;
    stub.crash(false);
    await sleep(350); // the restart has begun and is still joining
    assert.equal(stub.state.runs, 2);
    await writer.stop();
    assert.equal(stub.state.disconnectedAfter, 2, 'disconnected after the restarted run ended');
  });

  it('does not run the consumer again once stopped', async () => {
    const { stub, writer } = await started();
    stub.crash(false);
    await writer.stop();
    await sleep(600);
    assert.equal(stub.state.runs, 1);
  });
});
