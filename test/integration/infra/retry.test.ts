import { jest } from '@jest/globals';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import {
  HttpStatusError,
  parseRetryAfter,
  withRetry,
  type RetryInfo,
  type RetryPolicy,
} from '../../../src/infra/index.js';

/** Each request pops the next scripted reply; the server counts what it really received. */
type Reply = { status: number; headers?: Record<string, string>; body?: string } | 'drop';

interface ScriptedServer {
  url: string;
  requests: () => number;
  close: () => Promise<void>;
}

async function startServer(script: Reply[]): Promise<ScriptedServer> {
  let count = 0;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const reply = script[Math.min(count, script.length - 1)];
    count++;
    req.resume();
    if (reply === undefined || reply === 'drop') {
      // A connection that dies mid-request, as when a proxy or the server process restarts.
      req.socket.destroy();
      return;
    }
    res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
    res.end(reply.body ?? `status ${reply.status}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api`,
    requests: () => count,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

// A fresh connection per request so a destroyed socket is not reused from the pool.
const agent = new Agent({ pipelining: 0 });

/** The way the tracking client calls a server: non-2xx becomes HttpStatusError. */
async function getText(url: string): Promise<string> {
  const response = await request(url, { dispatcher: agent, reset: true });
  const body = await response.body.text();
  if (response.statusCode >= 300) {
    const header = response.headers['retry-after'];
    throw new HttpStatusError(response.statusCode, `GET ${url} -> ${response.statusCode}`, {
      retryAfterMs: parseRetryAfter(typeof header === 'string' ? header : null),
      body,
    });
  }
  return body;
}

const fastPolicy: RetryPolicy = {
  baseMs: 2,
  capMs: 10,
  maxAttempts: 5,
  retryableStatuses: [408, 429, 500, 502, 503, 504],
};

let server: ScriptedServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

afterAll(async () => {
  await agent.close();
});

test('503, 503, 200 succeeds on the third attempt', async () => {
  server = await startServer([{ status: 503 }, { status: 503 }, { status: 200, body: 'ok' }]);
  const attempts: number[] = [];
  const retries: RetryInfo[] = [];
  const body = await withRetry(
    (attempt) => {
      attempts.push(attempt);
      return getText(server!.url);
    },
    fastPolicy,
    { onRetry: (info) => retries.push(info) },
  );
  expect(body).toBe('ok');
  expect(attempts).toEqual([1, 2, 3]);
  expect(server.requests()).toBe(3);
  expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
  expect(retries.every((r) => (r.error as HttpStatusError).status === 503)).toBe(true);
  // Full jitter: retry n waits at most min(cap, base * 2^n).
  expect(retries[0]!.delayMs).toBeLessThanOrEqual(2);
  expect(retries[1]!.delayMs).toBeLessThanOrEqual(4);
});

test('429 with Retry-After waits what the server asked', async () => {
  server = await startServer([
    { status: 429, headers: { 'retry-after': '1' } },
    { status: 200, body: 'after wait' },
  ]);
  const retries: RetryInfo[] = [];
  const started = performance.now();
  const body = await withRetry(() => getText(server!.url), fastPolicy, {
    onRetry: (info) => retries.push(info),
  });
  const elapsed = performance.now() - started;
  expect(body).toBe('after wait');
  expect(retries).toHaveLength(1);
  // 1 s from the header, far above the 10 ms cap of the policy.
  expect(retries[0]!.delayMs).toBe(1000);
  expect(elapsed).toBeGreaterThanOrEqual(990);
  expect(server.requests()).toBe(2);
});

test('a dropped connection is retried', async () => {
  server = await startServer(['drop', 'drop', { status: 200, body: 'back' }]);
  const errors: Error[] = [];
  const body = await withRetry(() => getText(server!.url), fastPolicy, {
    onRetry: (info) => errors.push(info.error),
  });
  expect(body).toBe('back');
  expect(server.requests()).toBe(3);
  expect(errors).toHaveLength(2);
  for (const error of errors) expect(error).not.toBeInstanceOf(HttpStatusError);
});

test('a refused connection is retried until maxAttempts, then the last error surfaces', async () => {
  server = await startServer([{ status: 200 }]);
  const url = server.url;
  await server.close();
  server = undefined;
  let calls = 0;
  const failure = withRetry(
    () => {
      calls++;
      return getText(url);
    },
    { ...fastPolicy, maxAttempts: 3 },
  );
  await expect(failure).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  expect(calls).toBe(3);
});

test('400 is not retried and the very same error object propagates', async () => {
  server = await startServer([{ status: 400, body: '{"error_code":"INVALID_PARAMETER_VALUE"}' }]);
  let thrown: HttpStatusError | undefined;
  const onRetry = jest.fn();
  const caught = await withRetry(
    async () => {
      try {
        return await getText(server!.url);
      } catch (error) {
        thrown = error as HttpStatusError;
        throw error;
      }
    },
    fastPolicy,
    { onRetry },
  ).catch((error: unknown) => error);
  expect(server.requests()).toBe(1);
  expect(onRetry).not.toHaveBeenCalled();
  expect(caught).toBe(thrown);
  expect((caught as HttpStatusError).status).toBe(400);
  expect((caught as HttpStatusError).body).toContain('INVALID_PARAMETER_VALUE');
});

test('maxAttempts bounds the attempts on a server that never recovers', async () => {
  server = await startServer([{ status: 502 }]);
  const caught = await withRetry(() => getText(server!.url), {
    ...fastPolicy,
    maxAttempts: 4,
  }).catch((error: unknown) => error);
  expect(server.requests()).toBe(4);
  expect(caught).toBeInstanceOf(HttpStatusError);
  expect((caught as HttpStatusError).status).toBe(502);
});

test('maxAttempts 1 means no retry at all', async () => {
  server = await startServer([{ status: 503 }, { status: 200 }]);
  await expect(
    withRetry(() => getText(server!.url), { ...fastPolicy, maxAttempts: 1 }),
  ).rejects.toBeInstanceOf(HttpStatusError);
  expect(server.requests()).toBe(1);
});

test('an abort signal stops the wait between attempts', async () => {
  server = await startServer([{ status: 503, headers: { 'retry-after': '30' } }, { status: 200 }]);
  const controller = new AbortController();
  const reason = new Error('user interrupted');
  const failure = withRetry(() => getText(server!.url), fastPolicy, {
    signal: controller.signal,
    onRetry: () => setTimeout(() => controller.abort(reason), 20),
  });
  await expect(failure).rejects.toBe(reason);
  expect(server.requests()).toBe(1);
});
