// Structured JSON logs (pino). One root logger; roles and requests take child loggers.
import { pino, type DestinationStream, type Logger } from 'pino';
import { activeTraceId } from './tracing.js';

export type { Logger };

/** destination: standard output unless given (tests read their own). */
export function createLogger(
  level: string,
  role = 'engine',
  destination?: DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { role },
    timestamp: pino.stdTimeFunctions.isoTime,
    // With tracing on, a line written inside a traced request names its trace.
    mixin: () => {
      const traceId = activeTraceId();
      return traceId ? { traceId } : {};
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
