import { PassThrough } from 'node:stream';
import { createLogger, type LoggerOptions } from '../../../src/infra/index.js';

function capture(options: LoggerOptions & { tty?: boolean } = {}) {
  const stream = new PassThrough();
  if (options.tty) Object.assign(stream, { isTTY: true });
  const chunks: string[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  const logger = createLogger({ env: {}, ...options, stream });
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== ''),
  };
}

test('JSON lines when the stream is not a TTY', () => {
  const { logger, lines } = capture();
  logger.info('fold done', { fold: 2, f1: 0.81 });
  const [line] = lines();
  const record = JSON.parse(line!);
  expect(record).toMatchObject({ level: 'info', msg: 'fold done', fold: 2, f1: 0.81 });
  expect(Number.isNaN(Date.parse(record.time))).toBe(false);
  expect(Object.keys(record).slice(0, 3)).toEqual(['time', 'level', 'msg']);
});

test('pretty lines on a TTY, with key=value fields', () => {
  const { logger, lines } = capture({ tty: true });
  logger.warn('slow step', { ms: 1200, path: 'a b' });
  const [line] = lines();
  expect(line).toMatch(/^\d\d:\d\d:\d\d\.\d{3} .*WARN.* slow step ms=1200 path="a b"$/);
  expect(() => JSON.parse(line!)).toThrow();
});

test('json option overrides the TTY check', () => {
  const { logger, lines } = capture({ tty: true, json: true });
  logger.info('x');
  expect(JSON.parse(lines()[0]!).msg).toBe('x');
});

test('levels below the threshold are dropped', () => {
  const { logger, lines } = capture({ level: 'warn' });
  logger.debug('d');
  logger.info('i');
  logger.warn('w');
  logger.error('e');
  expect(lines().map((l) => JSON.parse(l).msg)).toEqual(['w', 'e']);
});

test('MENTALLAM_LOG_LEVEL sets the level; an invalid value is an error naming it', () => {
  const { logger, lines } = capture({ env: { MENTALLAM_LOG_LEVEL: 'DEBUG' } });
  logger.debug('visible');
  expect(lines()).toHaveLength(1);
  expect(() => capture({ env: { MENTALLAM_LOG_LEVEL: 'loud' } })).toThrow(
    /MENTALLAM_LOG_LEVEL='loud'.*debug, info, warn, error/,
  );
});

test('child loggers add fields; fields cannot shadow time/level/msg', () => {
  const { logger, lines } = capture();
  logger
    .child({ fold: 1 })
    .child({ epoch: 3 })
    .error('boom', { level: 'fake', err: new Error('bad') });
  const record = JSON.parse(lines()[0]!);
  expect(record).toMatchObject({ level: 'error', msg: 'boom', fold: 1, epoch: 3 });
  expect(record.err).toEqual({ name: 'Error', message: 'bad' });
});
