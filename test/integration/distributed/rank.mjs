// One rank of a process-group test (process-group.test.ts): joins from the launch environment
// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT; TORCHELASTIC_USE_AGENT_STORE under torchrun),
// runs the scenario named by argv[2] and prints one JSON line of results on stdout. Plain
// JavaScript over the built package (dist/), since each rank is its own process.
import { join } from 'node:path';

import { readLaunchEnvironment } from '../../../dist/engine/index.js';
import { Classifier, ProcessGroup } from '../../../dist/native/index.js';

const scenario = process.argv[2];
const timeoutMs = Number(process.env.TEST_TIMEOUT_MS ?? 5000);
const launch = readLaunchEnvironment(process.env);
const out = { rank: launch.rank, pid: process.pid };

function report() {
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

/** The error of `run` (thrown at once or rejected), or null. */
async function errorOf(run) {
  try {
    await run();
    return null;
  } catch (error) {
    return { message: error.message, code: error.code };
  }
}

const started = Date.now();
const joined = ProcessGroup.join({
  rank: launch.rank,
  worldSize: launch.worldSize,
  masterAddr: launch.masterAddr,
  masterPort: launch.masterPort,
  agentStore: launch.agentStore,
  timeoutMs,
  backend: 'gloo',
});
if (scenario === 'join-alone') {
  out.error = await errorOf(() => joined);
  out.seconds = (Date.now() - started) / 1000;
  report();
  process.exit(0);
}
const group = await joined;
const { rank, worldSize } = group;
out.agentStore = launch.agentStore;

if (scenario === 'collectives') {
  out.sum = Array.from(await group.allReduceSum(Float64Array.of(rank + 1, 10 * rank), 'sum'));
  out.sum32 = Array.from(await group.allReduceSum(Float32Array.of(0.5, rank), 'sum32'));
  out.gathered = Array.from(await group.allGather(Float32Array.of(rank, rank + 0.25), 'gather'));
  out.broadcast = Array.from(await group.broadcast(Float64Array.of(rank * 7 + 1), 1, 'bcast'));
  await group.barrier('barrier');
  out.exchanged = await group.exchange('names', `rank-${rank}`);
  if (rank === 0) await group.publish('greeting', 'hello from 0');
  out.awaited = await group.await('greeting');
  await group.barrier('before add');
  out.added = await group.add('counter', rank + 1);
  await group.barrier('after add');
  out.total = await group.add('counter', 0);
  out.info = group.info();
  out.failure = group.failure();
  await group.leave();
  out.afterLeave = await errorOf(() => group.barrier('after leave'));
} else if (scenario === 'grad-sync') {
  // Each rank trains its micro-batches of every step; the test compares with one process.
  const [modelDir, outDir, batchesJson] = process.argv.slice(3);
  const batches = JSON.parse(batchesJson);
  const classifier = await Classifier.load({
    modelDir,
    dora: {
      r: 4,
      alpha: 8,
      dropout: 0,
      targetModules: ['q_proj', 'v_proj', 'down_proj'],
      useRslora: false,
    },
    numLabels: 2,
    seed: 3,
  });
  await classifier.setGradientSync(group, { bucketBytes: 2048 });
  out.losses = [];
  out.gradNorms = [];
  for (const step of batches) {
    const mine = step.filter((_, i) => i % worldSize === rank);
    let result;
    for (let i = 0; i < mine.length; i++) {
      const b = mine[i];
      const batch = {
        inputIds: Int32Array.from(b.ids),
        attentionMask: Uint8Array.from(b.mask),
        labels: Float32Array.from(b.labels),
        batchSize: b.labels.length,
        seqLen: b.ids.length / b.labels.length,
      };
      result = await classifier.trainStep(batch, {
        lr: 1e-2,
        maxGradNorm: 1,
        accumulate: i < mine.length - 1,
      });
      out.losses.push(result.loss);
    }
    if (mine.length === 0) result = await classifier.syncStep({ lr: 1e-2, maxGradNorm: 1 });
    out.gradNorms.push(result.gradNorm);
  }
  out.stats = classifier.gradientSyncStats();
  await classifier.saveAdapter(join(outDir, `rank_${rank}`));
  classifier.dispose();
  await group.leave();
} else if (scenario === 'die') {
  await group.barrier('ready');
  if (rank === 1) process.exit(3);
  const deadline = Date.now() + 4 * timeoutMs;
  while (group.failure() === null && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50));
  out.failure = group.failure();
  out.detectedAfter = (Date.now() - started) / 1000;
  out.collective = await errorOf(() => group.allReduceSum(Float64Array.of(1), 'after the death'));
  await group.leave();
} else if (scenario === 'hang') {
  await group.barrier('ready');
  if (rank === 1) process.kill(process.pid, 'SIGSTOP');
  const hungAt = Date.now();
  out.collective = await errorOf(() =>
    group.allReduceSum(Float64Array.of(1), 'a sum with a hung peer'),
  );
  out.collectiveSeconds = (Date.now() - hungAt) / 1000;
  out.failure = group.failure();
  await group.leave();
} else if (scenario === 'error-exit') {
  await group.barrier('ready');
  if (rank === 1) {
    await group.leave('rank 1 ran out of ideas');
  } else {
    out.awaitError = await errorOf(() => group.await('never-published'));
  }
}
report();
