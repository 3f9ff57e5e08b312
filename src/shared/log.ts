// Structured JSON logs (pino). One root logger; roles and requests take child loggers.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, role = 'engine'): Logger {
  return pino({ level, base: { role }, timestamp: pino.stdTimeFunctions.isoTime });
}
