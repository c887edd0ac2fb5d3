/**
 * Fault suite (issue 16): the real MLflow server is killed (SIGKILL of its process group) at
 * moments of a real 2-fold training run: at a run creation, a metric batch, an artifact upload or a
 * status update, before the request reaches the server or after the server handled it but before
 * its answer arrives. The moments are drawn by a seeded RNG among the requests of a fault-free
 * reference run (MENTALLAM_FAULT_SEED picks another draw). After each kill, and a drawn downtime,
 * the next server process over the same backend store (sqlite DB and artifact folder) takes over,
 * as after a restart; after training, `mentallam sync` runs. Then every metric step and every
 * artifact of the reference run must be on the server exactly once for the faulted run: no step
 * missing or doubled, no extra child run, no artifact missing or truncated.
 *
 * The requests pass through a small HTTP relay that only observes them (to know when to kill),
 * forwards them to the live server process, and drops the connection while none is live, as a dead
 * server does. The processes that take over are started in advance (while the reference run trains),
 * so that a restart costs the training no more than the drawn downtime and the suite stays short.
 */
import { existsSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { request } from 'undici';
import { runCli } from '../../../src/cli/index.js';
import { trainFolds } from '../../../src/engine/index.js';
import { createRng } from '../../../src/infra/index.js';
import { readSpool, startLocalServer, type LocalServer } from '../../../src/tracking/index.js';
import { mlflowBin, runPython, serverStartTimeoutMs, tempDir, uniqueName } from './helpers.js';

const seed = Number(process.env.MENTALLAM_FAULT_SEED ?? 16);
/** One kill per kind (run creation, metric batch, artifact upload, status update). */
const killCount = 4;

type Kind = 'create' | 'batch' | 'artifact' | 'update' | 'other';
const faultKinds: Kind[] = ['create', 'batch', 'artifact', 'update'];

function kindOf(method: string, path: string): Kind {
  if (method === 'POST' && path.endsWith('/mlflow/runs/create')) return 'create';
  if (method === 'POST' && path.endsWith('/mlflow/runs/log-batch')) return 'batch';
  if (method === 'PUT' && path.includes('/mlflow-artifacts/artifacts/')) return 'artifact';
  if (method === 'POST' && path.endsWith('/mlflow/runs/update')) return 'update';
  return 'other';
}

interface KillPoint {
  kind: Kind;
  /** Fires at the first request of `kind` numbered at least this (1-based, per kind). */
  index: number;
  /** before: the request never reaches the server; after: handled, but the answer is lost. */
  phase: 'before' | 'after';
  /** How long the server stays down before the next process takes over. */
  downMs: number;
}

const work = tempDir('training-faults');
const store = join(work, 'store');
const started: LocalServer[] = [];

/** Server process `n` over the shared store (each in its own folder for its pid/lock files). */
async function startServer(n: number): Promise<LocalServer> {
  const instance = await startLocalServer({
    workDir: join(work, `server-${n}`),
    backendStoreUri: `sqlite:///${join(store, 'mlflow.db')}`,
    artifactsDestination: join(store, 'artifacts'),
    mlflowBin,
    startTimeoutMs: serverStartTimeoutMs,
  });
  started.push(instance);
  return instance;
}

/** The relay: counts requests per kind, kills the server at the armed point, drops requests while it is down. */
class Relay {
  uri = '';
  /** The live server process; undefined while the server is down. */
  upstream: LocalServer | undefined;
  readonly seen: Kind[] = [];
  private readonly counts = new Map<Kind, number>();
  private armed: KillPoint | undefined;
  private http: Server | undefined;
  /** Called when the armed point is reached (after the server was killed). */
  onKill: (point: KillPoint) => void = () => undefined;

  async start(): Promise<void> {
    this.http = createServer((req, res) => void this.handle(req, res));
    this.http.keepAliveTimeout = 1000;
    await new Promise<void>((resolvePromise) =>
      this.http!.listen(0, '127.0.0.1', () => resolvePromise()),
    );
    this.uri = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  arm(point: KillPoint | undefined): void {
    this.armed = point;
  }

  resetCounts(): void {
    this.counts.clear();
    this.seen.length = 0;
  }

  close(): Promise<void> {
    this.http?.closeAllConnections();
    return new Promise((resolvePromise) => this.http?.close(() => resolvePromise()));
  }

  private kill(point: KillPoint, target: LocalServer): void {
    this.upstream = undefined;
    this.armed = undefined;
    process.kill(-target.pid, 'SIGKILL');
    this.onKill(point);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = (req.url ?? '/').split('?')[0] as string;
    const kind = kindOf(req.method ?? 'GET', path);
    this.seen.push(kind);
    const count = (this.counts.get(kind) ?? 0) + 1;
    this.counts.set(kind, count);
    const target = this.upstream;
    if (target === undefined) {
      // As a dead server: the connection goes away without an answer.
      req.socket.destroy();
      return;
    }
    const point = this.armed?.kind === kind && count >= this.armed.index ? this.armed : undefined;
    if (point?.phase === 'before') this.kill(point, target);
    try {
      const headers = { ...req.headers };
      delete headers.host;
      delete headers.connection;
      delete headers['keep-alive'];
      if (point?.phase === 'before') throw new Error('killed');
      const answer = await request(`${target.uri}${req.url}`, {
        method: req.method as 'GET',
        headers,
        ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
      });
      const body = Buffer.from(await answer.body.arrayBuffer());
      if (point?.phase === 'after') {
        this.kill(point, target);
        throw new Error('killed after the server handled it');
      }
      res.writeHead(answer.statusCode, {
        'content-type': String(answer.headers['content-type'] ?? 'application/json'),
      });
      res.end(body);
    } catch {
      req.socket.destroy();
    }
  }
}

const relay = new Relay();

beforeAll(async () => {
  relay.upstream = await startServer(0);
  await relay.start();
}, serverStartTimeoutMs + 10_000);

afterAll(async () => {
  await relay.close();
  for (const instance of [...started].reverse()) await instance.stop();
});

function overrides(runName: string, experiment: string): string[] {
  return [
    'model=tiny',
    'training=default',
    `run_dir=${join(work, runName)}`,
    `model.path=${join(work, 'model')}`,
    `data.dir=${join(work, 'data')}`,
    `data.criteria_path=${resolve('data/dsm5/criteria.json')}`,
    'data.synthetic.n_posts=40',
    'data.splits.n_splits=2',
    'data.splits.inner_validation_fraction=0.25',
    'data.prompt.max_length=96',
    'training.max_steps=4',
    'training.eval_every_steps=2',
    'training.micro_batch_size=8',
    'training.effective_batch_size=8',
    `logging.mlflow.tracking_uri=${relay.uri}`,
    `logging.mlflow.experiment_name=${experiment}`,
    // Few, short retries: a call made while the server is down goes to the spool at once.
    'logging.mlflow.retry.max_attempts=2',
    'logging.mlflow.retry.base_ms=50',
    'logging.mlflow.retry.cap_ms=200',
    'logging.progress.mode=none',
    'logging.level=error',
  ];
}

/** Draws `killCount` points of different kinds among the reference run's requests. */
function drawKillPoints(reference: Kind[]): KillPoint[] {
  const random = createRng(seed);
  const kinds = [...faultKinds];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j] as Kind, kinds[i] as Kind];
  }
  const points = kinds.slice(0, killCount).map((kind): KillPoint & { position: number } => {
    const positions = reference.flatMap((seen, position) => (seen === kind ? [position] : []));
    const index = 1 + Math.floor(random() * positions.length);
    return {
      kind,
      index,
      phase: random() < 0.5 ? 'before' : 'after',
      downMs: 500 + Math.floor(random() * 2500),
      position: positions[index - 1] as number,
    };
  });
  // In the order the run reaches them; each is armed once the server is back from the previous one.
  return points
    .sort((a, b) => a.position - b.position)
    .map(({ position: _position, ...point }) => point);
}

interface RunView {
  status: string;
  metrics: Record<string, number[]>;
  artifacts: [string, number][];
}
interface TrainingView {
  parent: RunView;
  children: [string, RunView][];
}

/** What MLflow's own client shows for a parent run and its children. */
async function describe(uri: string, parentRunIds: string[]): Promise<TrainingView[]> {
  return runPython<TrainingView[]>(
    uri,
    `
import json
from mlflow import MlflowClient
c = MlflowClient()
def one(run):
    rid = run.info.run_id
    metrics = {k: sorted(m.step for m in c.get_metric_history(rid, k)) for k in run.data.metrics}
    artifacts = []
    def walk(path):
        for f in c.list_artifacts(rid, path):
            if f.is_dir: walk(f.path)
            else: artifacts.append([f.path, f.file_size])
    walk(None)
    return {"status": run.info.status, "metrics": metrics, "artifacts": sorted(artifacts)}
def describe(parent_id):
    parent = c.get_run(parent_id)
    children = c.search_runs([parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}'", run_view_type=3)
    return {"parent": one(parent),
            "children": sorted([[ch.data.tags.get("mentallam.fold", "?"), one(ch)] for ch in children])}
print(json.dumps([describe(p) for p in ${JSON.stringify(parentRunIds)}]))
`,
  );
}

/** Where the run directory holds the file an artifact was uploaded from. */
function localFile(runDir: string, fold: string | undefined, artifactPath: string): string {
  const candidates = [
    ...(fold === undefined ? [] : [join(runDir, `fold_${fold}`, artifactPath)]),
    join(runDir, artifactPath),
  ];
  return candidates.find((path) => existsSync(path)) ?? candidates[0]!;
}

test(`server killed at ${killCount} seeded moments of a 2-fold run (seed ${seed}): after sync, every metric step and artifact exactly once`, async () => {
  // 1. The fault-free reference: what must end up on the server, and the request sequence to draw
  // from. Meanwhile the processes that take over after each kill start, one after the other.
  const standbys: Promise<LocalServer[]> = (async () => {
    const ready: LocalServer[] = [];
    for (let n = 1; n <= killCount; n++) ready.push(await startServer(n));
    return ready;
  })();
  const reference = await trainFolds({
    overrides: overrides('reference', uniqueName('faults-reference')),
    cwd: work,
  });
  const referenceRequests = [...relay.seen];
  const takeOver = await standbys;
  const points = drawKillPoints(referenceRequests);
  const plan = points.map((p) => `${p.kind} #${p.index} ${p.phase}, down ${p.downMs} ms`);
  expect(plan).toHaveLength(killCount);

  // 2. The faulted run: kill, the next process takes over after the downtime, the next point is
  // armed. Points the run itself does not reach (its calls were spooled) are reached by sync.
  relay.resetCounts();
  const fired: string[] = [];
  let stage = 'training';
  let restarting: Promise<void> = Promise.resolve();
  relay.onKill = (point) => {
    fired.push(`${point.kind} #${point.index} ${point.phase} (${stage})`);
    const next = takeOver[fired.length - 1] as LocalServer;
    restarting = new Promise((resolvePromise) =>
      setTimeout(() => {
        relay.upstream = next;
        relay.arm(points[fired.length]);
        resolvePromise();
      }, point.downMs),
    );
  };
  relay.arm(points[0]);
  const runName = 'faulted';
  const runDir = join(work, runName);
  const faulted = await trainFolds({
    overrides: overrides(runName, uniqueName('faults')),
    cwd: work,
  });
  await restarting;
  const spooled = readSpool(runDir).entries.length;

  // 3. `mentallam sync` sends whatever the run could not. A sync cut short by a kill exits 1
  // saying so, and the next one finishes the job.
  stage = 'sync';
  const syncs: { code: number; stderr: string; killed: boolean }[] = [];
  for (let attempt = 0; attempt <= killCount; attempt++) {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const err: string[] = [];
    stderr.on('data', (chunk: Buffer) => err.push(chunk.toString()));
    stdout.resume();
    const firedBefore = fired.length;
    const code = await runCli(['sync', runDir], {
      stdout,
      stderr,
      env: { MLFLOW_TRACKING_URI: relay.uri },
    });
    await restarting;
    syncs.push({ code, stderr: err.join(''), killed: fired.length > firedBefore });
    if (code === 0) break;
  }
  relay.arm(undefined);
  // What this draw exercised, for the CI log.
  process.stderr.write(
    `training faults, seed ${seed}: killed at ${fired.join('; ')}; ${spooled} calls spooled; ${syncs.length} syncs\n`,
  );
  const context = { seed, plan, fired, spooled };
  // Every point is reached: the faulted run sends at least the reference's requests of each kind.
  expect({ ...context, firedCount: fired.length }).toEqual({ ...context, firedCount: killCount });
  expect(spooled).toBeGreaterThan(0);
  for (const sync of syncs.slice(0, -1))
    expect({ ...context, sync }).toEqual({
      ...context,
      sync: { code: 1, stderr: expect.stringMatching(/not sent|unreachable/), killed: true },
    });
  expect({ ...context, code: syncs.at(-1)?.code }).toEqual({ ...context, code: 0 });
  const spool = readSpool(runDir);
  expect({ pending: spool.pending.length, rejected: spool.rejected }).toEqual({
    pending: 0,
    rejected: [],
  });

  // 4. Exactly the reference's metric steps and artifacts, once each, on finished runs.
  const [expected, actual] = await describe(relay.upstream!.uri, [
    reference.parentRunId as string,
    faulted.parentRunId as string,
  ]);
  expect({ ...context, folds: actual!.children.map(([fold]) => fold) }).toEqual({
    ...context,
    folds: ['0', '1'],
  });
  const roles: [string | undefined, RunView, RunView][] = [
    [undefined, expected!.parent, actual!.parent],
    ...expected!.children.map(([fold], i): [string, RunView, RunView] => [
      fold,
      expected!.children[i]![1],
      actual!.children[i]![1],
    ]),
  ];
  for (const [fold, want, got] of roles) {
    const role = fold === undefined ? 'parent' : `fold_${fold}`;
    expect({ ...context, role, status: got.status, metrics: got.metrics }).toEqual({
      ...context,
      role,
      status: 'FINISHED',
      metrics: want.metrics,
    });
    expect({ ...context, role, artifacts: got.artifacts.map(([path]) => path) }).toEqual({
      ...context,
      role,
      artifacts: want.artifacts.map(([path]) => path),
    });
    for (const [path, size] of got.artifacts)
      expect({ ...context, role, path, size }).toEqual({
        ...context,
        role,
        path,
        size: statSync(localFile(runDir, fold, path)).size,
      });
  }
}, 900_000);
