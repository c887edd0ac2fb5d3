import { createHash, randomBytes } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  mkdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  MlflowClient,
  startLocalServer,
  type LocalServer,
  type Run,
} from '../../../src/tracking/index.js';
import { mlflowBin, runPython, serverStartTimeoutMs, tempDir, uniqueName } from './helpers.js';

let server: LocalServer;
let client: MlflowClient;
let run: Run;
const work = tempDir('artifacts');

beforeAll(async () => {
  server = await startLocalServer({
    workDir: join(work, 'server'),
    mlflowBin,
    startTimeoutMs: serverStartTimeoutMs,
  });
  client = new MlflowClient({ trackingUri: server.uri });
  const experiment = await client.getOrCreateExperiment(uniqueName('artifacts'));
  run = await client.createRun({ experimentId: experiment.experimentId, runName: 'artifacts' });
}, serverStartTimeoutMs + 10_000);

afterAll(async () => {
  await client?.close();
  await server?.stop();
});

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

test('a directory round-trips byte-identical; listing and path checks', async () => {
  const dir = join(work, 'adapter');
  mkdirSync(join(dir, 'nested', 'deeper'), { recursive: true });
  const files: Record<string, Buffer> = {
    'adapter_config.json': Buffer.from('{"r": 8}\n'),
    'adapter_model.safetensors': randomBytes(300_000),
    'nested/deeper/notes with space.txt': Buffer.from('ünïcode ✓\n'),
    'nested/empty.bin': Buffer.alloc(0),
  };
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);

  const uploaded = await client.uploadArtifacts(run.info.runId, dir, 'fold_0/adapter');
  expect(uploaded.sort()).toEqual(
    Object.keys(files)
      .map((name) => `fold_0/adapter/${name}`)
      .sort(),
  );

  const listing = await client.listArtifacts(run.info.runId, 'fold_0/adapter', { recursive: true });
  expect(
    listing
      .filter((entry) => !entry.isDir)
      .map((entry) => entry.path)
      .sort(),
  ).toEqual(uploaded.sort());
  expect(listing.find((entry) => entry.path.endsWith('adapter_model.safetensors'))?.fileSize).toBe(
    300_000,
  );

  for (const [name, data] of Object.entries(files)) {
    const target = join(work, 'download', name);
    await client.downloadArtifact(run.info.runId, `fold_0/adapter/${name}`, target);
    expect(readFileSync(target).equals(data)).toBe(true);
  }

  await expect(
    client.uploadArtifact(run.info.runId, join(dir, 'adapter_config.json'), '../escape'),
  ).rejects.toThrow(/must not contain '\.\.'/);
  await expect(
    client.uploadArtifact(run.info.runId, join(dir, 'adapter_config.json'), '/abs'),
  ).rejects.toThrow(/must be relative/);
  await expect(
    client.downloadArtifact(run.info.runId, 'a/../../b', join(work, 'x')),
  ).rejects.toThrow(/\.\./);
  await expect(
    client.downloadArtifact(run.info.runId, 'fold_0/missing.bin', join(work, 'x')),
  ).rejects.toThrow(/RESOURCE_DOES_NOT_EXIST/);
});

test('a 200 MB file is streamed: byte-identical, RSS far below the file size', async () => {
  const size = 200 * 1024 * 1024;
  const big = join(work, 'checkpoint.bin');
  const chunk = randomBytes(1024 * 1024);
  const out = createWriteStream(big);
  for (let i = 0; i < size / chunk.length; i++) {
    chunk.writeUInt32LE(i, 0); // every MiB differs, so a misplaced chunk changes the hash
    if (!out.write(Buffer.from(chunk)))
      await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) =>
    out.end((error?: Error | null) => (error ? reject(error) : resolve())),
  );
  const expected = await sha256(big);

  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  const started = Date.now();
  try {
    await client.uploadArtifact(run.info.runId, big, 'checkpoints');
  } finally {
    clearInterval(sampler);
  }
  const uploadSeconds = (Date.now() - started) / 1000;
  const growthMb = (peak - baseline) / 1024 / 1024;
  process.stdout.write(
    `[figures] 200 MB upload: ${uploadSeconds.toFixed(1)} s, RSS baseline ${(baseline / 1048576).toFixed(0)} MB, peak growth ${growthMb.toFixed(1)} MB\n`,
  );
  expect(growthMb).toBeLessThan(64);

  const downloaded = join(work, 'download', 'checkpoint.bin');
  await client.downloadArtifact(run.info.runId, 'checkpoints/checkpoint.bin', downloaded);
  expect(await sha256(downloaded)).toBe(expected);
}, 300_000);

test('registry: idempotent model, version from a run artifact, alias resolves', async () => {
  const dir = join(work, 'model');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_config.json'), '{"r": 8}\n');
  await client.uploadArtifacts(run.info.runId, dir, 'model');

  const name = uniqueName('mentallam');
  await client.createRegisteredModel(name, { description: 'test' });
  await client.createRegisteredModel(name); // again: no error, same model
  const version = await client.createModelVersion({
    name,
    runId: run.info.runId,
    artifactPath: 'model',
    tags: { fold: 'best' },
  });
  expect(version.version).toBe('1');
  expect(version.source).toBe(`${run.info.artifactUri}/model`);
  expect(version.runId).toBe(run.info.runId);
  await client.setModelAlias(name, 'champion', version.version);
  await client.setModelVersionTag(name, version.version, 'auc', '0.81');

  const resolved = await client.resolveModelUri(`models:/${name}@champion`);
  expect(resolved).toMatchObject({
    name,
    version: '1',
    source: `${run.info.artifactUri}/model`,
    runId: run.info.runId,
  });
  expect(resolved.tags).toMatchObject({ fold: 'best', auc: '0.81' });
  expect((await client.getRegisteredModel(name)).aliases).toEqual({ champion: '1' });
  await expect(client.setModelAlias(name, 'v2', '1')).rejects.toThrow(/Invalid model alias/);

  // MLflow's own client resolves the alias to the same version and source.
  const py = await runPython<{ version: string; source: string; run_id: string }>(
    server.uri,
    `
import json
from mlflow import MlflowClient
v = MlflowClient().get_model_version_by_alias(${JSON.stringify(name)}, "champion")
print(json.dumps({"version": v.version, "source": v.source, "run_id": v.run_id}))
`,
  );
  expect(py).toEqual({
    version: '1',
    source: `${run.info.artifactUri}/model`,
    run_id: run.info.runId,
  });
});
