import { EventEmitter } from 'node:events';
import { createInterruptHub } from '../../../src/infra/signals.js';

function fakeProcess() {
  const emitter = new EventEmitter();
  const exits: number[] = [];
  const hub = createInterruptHub(emitter, (code) => exits.push(code));
  return { emitter, exits, hub };
}

test('the first signal calls every handler with its name; the second exits with 130', () => {
  const { emitter, exits, hub } = fakeProcess();
  const seen: string[] = [];
  hub.onInterrupt((signal) => seen.push(`a:${signal}`));
  hub.onInterrupt((signal) => seen.push(`b:${signal}`));
  emitter.emit('SIGTERM', 'SIGTERM');
  expect(seen).toEqual(['a:SIGTERM', 'b:SIGTERM']);
  expect(exits).toEqual([]);
  expect(hub.interrupted).toBe(true);
  emitter.emit('SIGINT', 'SIGINT');
  expect(exits).toEqual([130]);
  expect(seen).toHaveLength(2);
});

test('a throwing handler does not stop the others', () => {
  const { emitter, hub } = fakeProcess();
  const seen: string[] = [];
  hub.onInterrupt(() => {
    throw new Error('bad handler');
  });
  hub.onInterrupt(() => seen.push('ran'));
  emitter.emit('SIGINT', 'SIGINT');
  expect(seen).toEqual(['ran']);
});

test('listeners exist only while a handler is registered', () => {
  const { emitter, hub } = fakeProcess();
  expect(emitter.listenerCount('SIGINT')).toBe(0);
  const off1 = hub.onInterrupt(() => undefined);
  const off2 = hub.onInterrupt(() => undefined);
  expect(emitter.listenerCount('SIGINT')).toBe(1);
  expect(emitter.listenerCount('SIGTERM')).toBe(1);
  off1();
  off1();
  expect(emitter.listenerCount('SIGINT')).toBe(1);
  off2();
  expect(emitter.listenerCount('SIGINT')).toBe(0);
  expect(emitter.listenerCount('SIGTERM')).toBe(0);
});
