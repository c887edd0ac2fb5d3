import { format } from 'node:util';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export const logLevels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  /** A logger that adds `fields` to every record (e.g. `{ fold: 2 }`). */
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  /** Lowest level written; default MENTALLAM_LOG_LEVEL, else 'info'. */
  level?: LogLevel;
  /** JSON lines when true, human-readable when false; default: pretty only on a TTY. */
  json?: boolean;
  /** Default process.stderr, so stdout stays free for command output. */
  stream?: NodeJS.WritableStream;
  /** Where MENTALLAM_LOG_LEVEL is read; default process.env. */
  env?: NodeJS.ProcessEnv;
}

function isLogLevel(value: string): value is LogLevel {
  return (logLevels as readonly string[]).includes(value);
}

/** Resolves the level from options, then MENTALLAM_LOG_LEVEL; a bad value is an error, not a silent default. */
export function resolveLogLevel(level: LogLevel | undefined, env: NodeJS.ProcessEnv): LogLevel {
  if (level !== undefined) {
    if (!isLogLevel(level))
      throw new Error(
        `Invalid log level '${String(level)}': expected one of ${logLevels.join(', ')}`,
      );
    return level;
  }
  const fromEnv = env.MENTALLAM_LOG_LEVEL?.trim().toLowerCase();
  if (fromEnv === undefined || fromEnv === '') return 'info';
  if (!isLogLevel(fromEnv))
    throw new Error(
      `Invalid MENTALLAM_LOG_LEVEL='${env.MENTALLAM_LOG_LEVEL}': expected one of ${logLevels.join(', ')}`,
    );
  return fromEnv;
}

// Errors lose their message and stack under JSON.stringify; keep what helps diagnose.
function toSerializable(value: unknown): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    const status = (value as { status?: unknown }).status;
    if (status !== undefined) out.status = status;
    return out;
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

function jsonReplacer(_key: string, value: unknown): unknown {
  return toSerializable(value);
}

function prettyValue(value: unknown): string {
  const serializable = toSerializable(value);
  if (typeof serializable === 'string')
    return /[\s="]/.test(serializable) ? JSON.stringify(serializable) : serializable;
  if (typeof serializable === 'object' && serializable !== null)
    return JSON.stringify(serializable, jsonReplacer);
  return format('%s', serializable);
}

const levelColor: Record<LogLevel, string> = {
  debug: '\x1b[90m',
  info: '\x1b[36m',
  warn: '\x1b[33m',
  error: '\x1b[31m',
};

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

function clock(date: Date): string {
  return `${pad2(date.getHours())}:${pad2(date.getMinutes())}:${pad2(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

class StreamLogger implements Logger {
  constructor(
    private readonly threshold: number,
    private readonly json: boolean,
    private readonly color: boolean,
    private readonly stream: NodeJS.WritableStream,
    private readonly bound: Record<string, unknown>,
  ) {}

  debug(message: string, fields?: Record<string, unknown>): void {
    this.write('debug', message, fields);
  }
  info(message: string, fields?: Record<string, unknown>): void {
    this.write('info', message, fields);
  }
  warn(message: string, fields?: Record<string, unknown>): void {
    this.write('warn', message, fields);
  }
  error(message: string, fields?: Record<string, unknown>): void {
    this.write('error', message, fields);
  }

  child(fields: Record<string, unknown>): Logger {
    return new StreamLogger(this.threshold, this.json, this.color, this.stream, {
      ...this.bound,
      ...fields,
    });
  }

  private write(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (logLevels.indexOf(level) < this.threshold) return;
    const now = new Date();
    const all = { ...this.bound, ...fields };
    if (this.json) {
      // time/level/msg come first and fields cannot shadow them, so every line parses the same way.
      const { time: _time, level: _level, msg: _msg, ...rest } = all;
      const ordered = { time: now.toISOString(), level, msg: message, ...rest };
      this.stream.write(`${JSON.stringify(ordered, jsonReplacer)}\n`);
      return;
    }
    const tag = level.toUpperCase().padEnd(5);
    const coloredTag = this.color ? `${levelColor[level]}${tag}\x1b[0m` : tag;
    const rest = Object.entries(all)
      .map(([key, value]) => `${key}=${prettyValue(value)}`)
      .join(' ');
    this.stream.write(`${clock(now)} ${coloredTag} ${message}${rest === '' ? '' : ` ${rest}`}\n`);
  }
}

/** A leveled logger writing JSON lines (non-TTY, e.g. CI and files) or pretty lines (TTY). */
export function createLogger(options: LoggerOptions = {}): Logger {
  const stream = options.stream ?? process.stderr;
  const level = resolveLogLevel(options.level, options.env ?? process.env);
  const isTty = (stream as { isTTY?: boolean }).isTTY === true;
  const json = options.json ?? !isTty;
  return new StreamLogger(logLevels.indexOf(level), json, !json && isTty, stream, {});
}
