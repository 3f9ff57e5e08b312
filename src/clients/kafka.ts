// Creates the kafkajs clients: an idempotent producer (acks=all), consumers and admin.
import {
  Kafka,
  Partitioners,
  logLevel,
  type Consumer,
  type ConsumerConfig,
  type LogEntry,
  type Producer,
  type RetryOptions,
} from 'kafkajs';
import type { Config } from '../shared/config.js';
import type { Logger } from '../shared/log.js';

export interface KafkaOptions {
  /** kafkajs messages go to this logger (warnings and errors only); none: silent. */
  log?: Logger;
  retry?: RetryOptions;
}

export function createKafka(
  cfg: Pick<Config, 'KAFKA_BROKERS' | 'KAFKA_CLIENT_ID'>,
  role = 'engine',
  opts: KafkaOptions = {},
): Kafka {
  const log = opts.log;
  return new Kafka({
    clientId: `${cfg.KAFKA_CLIENT_ID}-${role}`,
    brokers: cfg.KAFKA_BROKERS,
    logLevel: log ? logLevel.WARN : logLevel.NOTHING,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        if (!log) return;
        const { message, ...rest } = entry;
        if (level <= logLevel.ERROR) log.error({ kafkajs: rest }, message);
        else log.warn({ kafkajs: rest }, message);
      },
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: opts.retry ?? { initialRetryTime: 200, retries: 8, maxRetryTime: 5000 },
  });
}

/**
 * The idempotent producer retries without duplicating within a session; kafkajs needs
 * at most one request in flight for that. Every send must use acks: -1 (all replicas).
 */
export function createProducer(kafka: Kafka): Producer {
  return kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    // Every message names its partition (= inventory partition); no key hashing involved.
    createPartitioner: Partitioners.DefaultPartitioner,
    // kafkajs keeps idempotence only with unlimited retries; callers bound shutdown instead.
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
  });
}

export function createConsumer(kafka: Kafka, config: ConsumerConfig): Consumer {
  return kafka.consumer({ allowAutoTopicCreation: false, ...config });
}

export const ACKS_ALL = -1;
