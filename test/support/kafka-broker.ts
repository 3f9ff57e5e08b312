// A Kafka broker of a drill's own (never the shared one): free ports, its own folder, so a
// drill can kill, restart or freeze it while every other test and run keeps its broker.
// Killed when the process exits. Starting one costs some 15-25 s of JVM start-up.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ensureTopic,
  pauseKafkaBroker,
  startKafkaBroker,
  stopKafkaBroker,
} from '../../tools/services/services.js';
import { freePort } from './redis-server.js';

export interface OwnKafka {
  brokers: string[];
  /** kill -9 (no clean shutdown). */
  kill(): Promise<void>;
  /** Starts it again on the same ports and data. */
  start(): Promise<void>;
  /** SIGSTOP / SIGCONT: a broker that holds its connections open and answers nothing. */
  pause(paused: boolean): void;
  /** Stops it and removes its folder. */
  close(): Promise<void>;
}

const dirs = new Set<string>();
process.on('exit', () => {
  for (const dir of dirs) {
    try {
      process.kill(Number(readFileSync(join(dir, 'kafka.pid'), 'utf8')), 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

const listens = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });

/** A port whose next one is free too (the broker's controller listens there). */
async function freePortPair(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port < 65535 && (await listens(port + 1))) return port;
  }
}

/** Starts a broker of its own with `topic` made (`partitions` partitions). */
export async function ownKafka(topic: string, partitions: number): Promise<OwnKafka> {
  const port = await freePortPair();
  const dir = mkdtempSync(join(tmpdir(), 'flashsale-kafka-'));
  dirs.add(dir);
  const brokers = [`127.0.0.1:${port}`];
  const quiet = () => undefined;
  await startKafkaBroker(brokers, quiet, dir);
  await ensureTopic(brokers, topic, partitions, quiet);
  return {
    brokers,
    kill: async () => {
      pauseKafkaBroker(false, dir);
      await stopKafkaBroker('SIGKILL', dir);
    },
    start: () => startKafkaBroker(brokers, quiet, dir),
    pause: (paused) => {
      pauseKafkaBroker(paused, dir);
    },
    close: async () => {
      pauseKafkaBroker(false, dir);
      await stopKafkaBroker('SIGKILL', dir);
      dirs.delete(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
