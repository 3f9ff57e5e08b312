// Counts the commands a client sends while some work runs, by name: each one a caller
// awaits in turn is a round trip (a script's own commands run inside Redis, unseen here).
import type { Command } from 'ioredis';
import type { RedisClient } from '../../src/clients/redis.js';

export async function commandsSent(
  redis: RedisClient,
  work: () => Promise<unknown>,
): Promise<Map<string, number>> {
  const sent = new Map<string, number>();
  const client = redis as unknown as { sendCommand: (c: Command) => unknown };
  const send = client.sendCommand.bind(client);
  client.sendCommand = (c: Command) => {
    sent.set(c.name, (sent.get(c.name) ?? 0) + 1);
    return send(c);
  };
  try {
    await work();
  } finally {
    client.sendCommand = send;
  }
  return sent;
}
