/** pino as the Temporal Runtime logger: JSON lines, pretty on a TTY, secrets redacted. */
import { pino, type Logger as Pino } from 'pino';
import type { Logger, LogLevel, LogMetadata } from '@temporalio/common';
import { redact } from '../common/redact.js';

export function createPino(opts: { level?: string; pretty?: boolean; destination?: number } = {}): Pino {
  const pretty = opts.pretty ?? (process.stdout.isTTY && process.env.GRPO_LOG_FORMAT !== 'json');
  const level = opts.level ?? process.env.GRPO_LOG_LEVEL ?? 'info';
  if (pretty) return pino({ level, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss' } } });
  return pino({ level }, pino.destination({ dest: opts.destination ?? 1, sync: false }));
}

const LEVELS = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;

function clean(meta?: LogMetadata): Record<string, unknown> {
  if (!meta) return {};
  try {
    return JSON.parse(redact(JSON.stringify(meta))) as Record<string, unknown>;
  } catch {
    return {};
  }
}

export class PinoTemporalLogger implements Logger {
  constructor(readonly p: Pino) {}
  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    this.p[LEVELS[level]](clean(meta), redact(message));
  }
  trace(m: string, meta?: LogMetadata) {
    this.log('TRACE', m, meta);
  }
  debug(m: string, meta?: LogMetadata) {
    this.log('DEBUG', m, meta);
  }
  info(m: string, meta?: LogMetadata) {
    this.log('INFO', m, meta);
  }
  warn(m: string, meta?: LogMetadata) {
    this.log('WARN', m, meta);
  }
  error(m: string, meta?: LogMetadata) {
    this.log('ERROR', m, meta);
  }
}
