import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { request } from 'undici';
import { onInterrupt, type Logger, type RetryPolicy } from '../infra/index.js';
import { MlflowClient } from './client.js';
import { connectionFromEnv, redactUri, type TrackingAuth, type TrackingTls } from './connection.js';

export const serverInfoFileName = '.mlflow-server.json';
const lockFileName = '.mlflow-server.lock';
const usersDirName = '.mlflow-server.users';

export interface LocalServerOptions {
  /** Holds the sqlite DB, the artifacts, the server log and the reuse/lock files. */
  workDir: string;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Default `sqlite:///<workDir>/mlflow.db`. */
  backendStoreUri?: string;
  /** Default `<workDir>/mlartifacts`. */
  artifactsDestination?: string;
  /** Default `.venv/bin/mlflow` of the project (or MENTALLAM_MLFLOW_BIN). */
  mlflowBin?: string;
  logger?: Logger;
  /** How long to wait for /health; the first start runs the DB migrations (slow on small machines). */
  startTimeoutMs?: number;
  /** After a SIGINT/SIGTERM, how long the run may take to end its runs before the server is stopped and the process exits. */
  interruptGraceMs?: number;
  /** Extra environment for the server process (e.g. MLFLOW_AUTH_CONFIG_PATH for basic auth). */
  env?: NodeJS.ProcessEnv;
  /** `basic-auth` serves MLflow's basic-auth app (users, permissions) instead of the open server. */
  appName?: 'basic-auth';
}

export interface LocalServer {
  uri: string;
  pid: number;
  /** true when another invocation's server was reused instead of starting one. */
  reused: boolean;
  /** Milliseconds from spawn to a healthy /health (0 when reused). */
  startupMs: number;
  /** Leaves the server; it is stopped when no other live invocation still uses it. */
  stop(): Promise<void>;
}

interface ServerInfo {
  pid: number;
  host: string;
  port: number;
  uri: string;
  backendStoreUri: string;
  artifactsDestination: string;
  startedAt: string;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolvePromise) => setTimeout(resolvePromise, ms));
}

async function healthy(uri: string, timeoutMs = 2_000): Promise<boolean> {
  try {
    const response = await request(`${uri}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    await response.body.dump();
    return response.statusCode === 200;
  } catch {
    return false;
  }
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePromise(port));
    });
  });
}

/** Finds the project's `.venv/bin/mlflow` walking up from the CWD and from this module. */
export function defaultMlflowBin(): string {
  const fromEnv = process.env.MENTALLAM_MLFLOW_BIN;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const starts = [process.cwd()];
  try {
    starts.push(dirname(fileURLToPath(import.meta.url)));
  } catch {
    // Not an ESM context (e.g. a CommonJS test transform): the CWD walk is enough.
  }
  for (const start of starts) {
    let dir = start;
    for (;;) {
      const candidate = join(dir, '.venv', 'bin', 'mlflow');
      if (existsSync(candidate)) return candidate;
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
  }
  return 'mlflow';
}

/** An exclusive lock file holding our pid; a lock whose owner died is taken over. */
async function acquireLock(path: string, timeoutMs: number): Promise<() => void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number(readFileSafe(path));
    if (Number.isInteger(owner) && owner > 0 && !isAlive(owner)) {
      rmSync(path, { force: true });
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(
        `Timed out waiting for the local MLflow server lock ${path} (held by pid ${owner})`,
      );
    await sleep(200);
  }
}

function readFileSafe(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function readInfo(workDir: string): ServerInfo | undefined {
  const text = readFileSafe(join(workDir, serverInfoFileName));
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as ServerInfo;
  } catch {
    return undefined;
  }
}

function liveUsers(usersDir: string): number[] {
  if (!existsSync(usersDir)) return [];
  const alive: number[] = [];
  for (const name of readdirSync(usersDir)) {
    const pid = Number(name.split('.')[0]);
    if (Number.isInteger(pid) && isAlive(pid)) alive.push(pid);
    else rmSync(join(usersDir, name), { force: true });
  }
  return alive;
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    // The server runs in its own process group (detached), so this reaches uvicorn's workers too.
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/**
 * Starts `mlflow server` (sqlite backend, one worker, artifacts served from a local directory) on
 * 127.0.0.1 and a free port, or joins the one another invocation already runs for the same
 * workDir: `<workDir>/.mlflow-server.json` records pid and port, a lock file serialises the
 * check-then-start, and `<workDir>/.mlflow-server.users/<pid>.<nonce>` records who uses it. The last live
 * user stops it (at stop(), at process exit, or after an interrupt's grace period), so two
 * invocations never run two servers over one sqlite file.
 */
export async function startLocalServer(options: LocalServerOptions): Promise<LocalServer> {
  const workDir = resolve(options.workDir);
  mkdirSync(workDir, { recursive: true });
  const host = options.host ?? '127.0.0.1';
  const logger = options.logger;
  const backendStoreUri = options.backendStoreUri ?? `sqlite:///${join(workDir, 'mlflow.db')}`;
  const artifactsDestination = resolve(
    options.artifactsDestination ?? join(workDir, 'mlartifacts'),
  );
  const startTimeoutMs = options.startTimeoutMs ?? 90_000;
  const usersDir = join(workDir, usersDirName);
  // One file per user (pid + nonce), so two users within one process are counted apart too.
  const userFile = `${process.pid}.${randomUUID().slice(0, 8)}`;
  const release = await acquireLock(join(workDir, lockFileName), startTimeoutMs);
  let info: ServerInfo;
  let reused = false;
  let startupMs = 0;
  try {
    const existing = readInfo(workDir);
    if (existing !== undefined && isAlive(existing.pid) && (await healthy(existing.uri))) {
      if (existing.backendStoreUri !== backendStoreUri)
        throw new Error(
          `A local MLflow server for ${workDir} already runs with backend ${redactUri(existing.backendStoreUri)}, not ${redactUri(backendStoreUri)}`,
        );
      info = existing;
      reused = true;
      logger?.info('Reusing the running local MLflow server', { uri: info.uri, pid: info.pid });
    } else {
      if (existing !== undefined && isAlive(existing.pid)) killGroup(existing.pid, 'SIGTERM');
      const spawned = await spawnServer({
        ...options,
        workDir,
        host,
        backendStoreUri,
        artifactsDestination,
        startTimeoutMs,
      });
      info = spawned.info;
      startupMs = spawned.startupMs;
      writeFileSync(join(workDir, serverInfoFileName), `${JSON.stringify(info, null, 2)}\n`);
    }
    mkdirSync(usersDir, { recursive: true });
    writeFileSync(join(usersDir, userFile), '');
  } finally {
    release();
  }

  let stopped = false;
  // Pids this handle sent SIGTERM to, so stop() can wait for them to exit.
  const stopping: number[] = [];
  const leaveSync = () => {
    if (stopped) return;
    stopped = true;
    rmSync(join(usersDir, userFile), { force: true });
    if (liveUsers(usersDir).length > 0) return;
    // The last user out stops the server registered now, which may have replaced ours (restart).
    const current = readInfo(workDir);
    rmSync(join(workDir, serverInfoFileName), { force: true });
    for (const pid of new Set([info.pid, current?.pid])) {
      if (pid === undefined || !isAlive(pid)) continue;
      killGroup(pid, 'SIGTERM');
      stopping.push(pid);
    }
  };
  const onExit = () => leaveSync();
  process.on('exit', onExit);
  const graceMs = options.interruptGraceMs ?? 30_000;
  const unsubscribe = onInterrupt(() => {
    // The run gets time to end its runs (KILLED) through the server; then the server goes and so do we.
    setTimeout(() => {
      leaveSync();
      process.exit(130);
    }, graceMs).unref();
  });

  return {
    uri: info.uri,
    pid: info.pid,
    reused,
    startupMs,
    stop: async () => {
      process.off('exit', onExit);
      unsubscribe();
      if (stopped) return;
      const releaseStop = await acquireLock(join(workDir, lockFileName), startTimeoutMs);
      try {
        leaveSync();
      } finally {
        releaseStop();
      }
      // Wait for the port to close so a restart on the same port (tests, next invocation) works.
      const deadline = Date.now() + 15_000;
      while (stopping.some(isAlive) && Date.now() < deadline) await sleep(100);
      for (const pid of stopping.filter(isAlive)) killGroup(pid, 'SIGKILL');
    },
  };
}

async function spawnServer(
  options: LocalServerOptions & {
    workDir: string;
    host: string;
    backendStoreUri: string;
    artifactsDestination: string;
    startTimeoutMs: number;
  },
): Promise<{ info: ServerInfo; startupMs: number }> {
  const port =
    options.port === undefined || options.port === 0 ? await freePort(options.host) : options.port;
  const bin = options.mlflowBin ?? defaultMlflowBin();
  const logPath = join(options.workDir, 'mlflow-server.log');
  const logFd = openSync(logPath, 'a');
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  // The server needs none of the client's credentials.
  for (const name of [
    'MLFLOW_TRACKING_URI',
    'MLFLOW_TRACKING_USERNAME',
    'MLFLOW_TRACKING_PASSWORD',
    'MLFLOW_TRACKING_TOKEN',
  ])
    delete env[name];
  if (options.backendStoreUri.startsWith('file:')) env.MLFLOW_ALLOW_FILE_STORE = 'true';
  const args = [
    'server',
    '--host',
    options.host,
    '--port',
    String(port),
    '--backend-store-uri',
    options.backendStoreUri,
    '--artifacts-destination',
    options.artifactsDestination,
    '--serve-artifacts',
    '--workers',
    '1',
    ...(options.appName === undefined ? [] : ['--app-name', options.appName]),
  ];
  const started = Date.now();
  const child = spawn(bin, args, {
    cwd: options.workDir,
    env,
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    exited = `exited with ${signal ?? `code ${code}`}`;
  });
  child.once('error', (error) => {
    exited = `could not start: ${error.message}`;
  });
  // Do not keep the event loop alive for the server; the exit hook stops it.
  child.unref();
  const uri = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  const deadline = started + options.startTimeoutMs;
  options.logger?.info('Starting a local MLflow server', {
    uri,
    backend: redactUri(options.backendStoreUri),
    log: logPath,
  });
  for (;;) {
    if (exited !== undefined)
      throw new Error(
        `The local MLflow server (${bin}) ${exited}; see ${logPath}:\n${tail(logPath)}`,
      );
    if (await healthy(uri)) break;
    if (Date.now() > deadline) {
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      throw new Error(
        `The local MLflow server did not answer /health within ${options.startTimeoutMs} ms; see ${logPath}:\n${tail(logPath)}`,
      );
    }
    await sleep(250);
  }
  const startupMs = Date.now() - started;
  options.logger?.info('Local MLflow server ready', { uri, startupMs });
  const info: ServerInfo = {
    pid: child.pid as number,
    host: options.host,
    port,
    uri,
    backendStoreUri: options.backendStoreUri,
    artifactsDestination: options.artifactsDestination,
    startedAt: new Date(started).toISOString(),
  };
  return { info, startupMs };
}

function tail(path: string, lines = 20): string {
  return (readFileSafe(path) ?? '').split('\n').slice(-lines).join('\n');
}

export interface ResolveTrackingOptions {
  /** `logging.mlflow.enabled`; false → null, nothing started. */
  enabled: boolean;
  /** Overrides MLFLOW_TRACKING_URI. Empty/undefined, `sqlite:` or `file:` → a local server. */
  trackingUri?: string;
  /** Where a local server keeps its DB, artifacts and lock files (e.g. `<outputs>/mlflow`). */
  workDir: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  retryPolicy?: RetryPolicy;
  auth?: TrackingAuth;
  tls?: TrackingTls;
  /**
   * Local server settings (host, port, binary, timeouts; the store used when no tracking URI is
   * given, and the artifacts destination, whose relative paths are taken from `cwd`).
   */
  localServer?: Partial<Omit<LocalServerOptions, 'workDir' | 'logger'>>;
  /** Base of relative store and artifact paths; default the process's working directory. */
  cwd?: string;
}

export interface ResolvedTracking {
  client: MlflowClient;
  /** Redacted tracking URI, safe to log and to save in the run's config. */
  uri: string;
  server?: LocalServer;
  /** Closes the client and leaves the local server (if any). */
  close(): Promise<void>;
}

/** sqlite:/// or file: URIs made absolute, so the server (started in workDir) finds the same store. */
function absoluteStoreUri(uri: string, base: string): string {
  if (uri.startsWith('sqlite:///')) {
    const path = uri.slice('sqlite:///'.length);
    return path.startsWith('/') ? uri : `sqlite:///${resolve(base, path)}`;
  }
  if (uri.startsWith('file:')) {
    const path = uri.replace(/^file:(\/\/)?/, '');
    return pathToFileURL(resolve(base, path)).toString();
  }
  return uri;
}

/**
 * Decides where tracking goes: null when disabled; an http(s) URI → a client for it (credentials
 * and TLS from the environment); no URI, or a `sqlite:`/`file:` store → a local server over that
 * store (started, or reused if already running) and a client for it.
 */
export async function resolveTracking(
  options: ResolveTrackingOptions,
): Promise<ResolvedTracking | null> {
  if (!options.enabled) return null;
  const connection = connectionFromEnv(options.env ?? process.env);
  const rawUri = options.trackingUri?.trim() || connection.trackingUri;
  const auth = options.auth ?? connection.auth;
  const tls = options.tls ?? connection.tls;
  const clientOptions = {
    ...(auth === undefined ? {} : { auth }),
    ...(tls === undefined ? {} : { tls }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.retryPolicy === undefined ? {} : { retryPolicy: options.retryPolicy }),
  };
  if (rawUri !== undefined && /^https?:/i.test(rawUri)) {
    const client = new MlflowClient({ ...clientOptions, trackingUri: rawUri });
    return { client, uri: client.trackingUri, close: () => client.close() };
  }
  if (rawUri !== undefined && !/^(sqlite|file):/i.test(rawUri) && !isAbsolute(rawUri))
    throw new Error(
      `Unsupported MLflow tracking URI '${redactUri(rawUri)}': expected http(s)://, sqlite:/// or file:`,
    );
  const base = options.cwd ?? process.cwd();
  // A sqlite:/file: tracking URI names the store; without one, the local server's own setting.
  const storeUri = rawUri ?? options.localServer?.backendStoreUri;
  const backendStoreUri =
    storeUri === undefined
      ? undefined
      : absoluteStoreUri(
          isAbsolute(storeUri) ? pathToFileURL(storeUri).toString() : storeUri,
          base,
        );
  const artifactsDestination = options.localServer?.artifactsDestination;
  const server = await startLocalServer({
    ...options.localServer,
    workDir: options.workDir,
    ...(backendStoreUri === undefined ? {} : { backendStoreUri }),
    ...(artifactsDestination === undefined
      ? {}
      : { artifactsDestination: resolve(base, artifactsDestination) }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
  const client = new MlflowClient({ ...clientOptions, trackingUri: server.uri });
  return {
    client,
    uri: server.uri,
    server,
    close: async () => {
      await client.close();
      await server.stop();
    },
  };
}

/** Test helper: removes a stale lock or users directory left by a crashed process. */
export function clearLocalServerState(workDir: string): void {
  for (const name of [lockFileName, serverInfoFileName]) {
    try {
      unlinkSync(join(workDir, name));
    } catch {
      // absent
    }
  }
  rmSync(join(workDir, usersDirName), { recursive: true, force: true });
}
