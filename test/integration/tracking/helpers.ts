import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

import { MlflowClient, startLocalServer, type LocalServer } from '../../../src/tracking/index.js';

export const repoRoot = resolve(process.cwd());
export const mlflowBin = join(repoRoot, '.venv', 'bin', 'mlflow');
export const pythonBin = join(repoRoot, '.venv', 'bin', 'python');
/** Server start-up is slow on 2 shared cores (migrations on a fresh sqlite DB). */
export const serverStartTimeoutMs = 120_000;

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `mentallam-${prefix}-`));
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
}

const execFileAsync = promisify(execFile);

/**
 * Runs a Python snippet with MLflow's own client against `trackingUri` and parses the JSON it
 * prints last: the oracle that what this client logged is what MLflow users see.
 */
export async function runPython<T>(
  trackingUri: string,
  code: string,
  env: NodeJS.ProcessEnv = {},
): Promise<T> {
  const { stdout } = await execFileAsync(pythonBin, ['-c', code], {
    env: { ...process.env, MLFLOW_TRACKING_URI: trackingUri, ...env },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 120_000,
  });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] as string) as T;
}

/**
 * A TCP forwarder on a fixed local port to `target` (host:port). `pause()` closes the port and
 * every open connection, as when a server goes away; `resume()` listens on the same port again.
 */
export interface TcpForwarder {
  uri: string;
  pause(): Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpForwarder(target: string): Promise<TcpForwarder> {
  const { hostname, port: targetPort } = new URL(target);
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(Number(targetPort), hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const listen = (port: number) =>
    new Promise<void>((resolvePromise) => server.listen(port, '127.0.0.1', resolvePromise));
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  const pause = () =>
    new Promise<void>((resolvePromise) => {
      for (const socket of sockets) socket.destroy();
      if (!server.listening) resolvePromise();
      else server.close(() => resolvePromise());
    });
  return {
    uri: `http://127.0.0.1:${port}`,
    pause,
    resume: () => listen(port),
    close: pause,
  };
}

/**
 * A real `mlflow server` for one describe block, with a client for it: started in beforeAll (its
 * store under `dir`), both closed in afterAll. Read `server` and `client` inside tests only.
 */
export function useMlflowServer(dir: string): { server: LocalServer; client: MlflowClient } {
  const handle = {} as { server: LocalServer; client: MlflowClient };
  beforeAll(async () => {
    handle.server = await startLocalServer({
      workDir: join(dir, 'mlflow'),
      mlflowBin,
      startTimeoutMs: serverStartTimeoutMs,
    });
    handle.client = new MlflowClient({ trackingUri: handle.server.uri });
  }, serverStartTimeoutMs + 10_000);
  afterAll(async () => {
    await handle.client?.close();
    await handle.server?.stop();
  });
  return handle;
}
