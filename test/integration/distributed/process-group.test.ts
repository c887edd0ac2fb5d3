/**
 * The c10d process group of the addon between real processes on 127.0.0.1 (Gloo): collectives
 * and the store, the launchers' environment (plain variables, and torchrun with its agent-hosted
 * store), data-parallel gradients against one process, and faults: a rank that dies, hangs,
 * stops with an error, or never comes. Every test has a hard limit and kills what it started.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { launchVariables } from '../../../src/engine/index.js';
import { freePort } from '../../../src/cli/launcher.js';
import {
  Classifier,
  inspectSafetensors,
  readSafetensorsTensor,
} from '../../../src/native/index.js';
import {
  describeWithGloo,
  endsWithin,
  killAll,
  killTree,
  rankScript,
  startProcess,
  torchrun,
  waitFor,
  lastJson,
  type StartedProcess,
} from './helpers.js';

interface RankResult {
  rank: number;
  pid: number;
  [key: string]: unknown;
}

type ErrorResult = { message: string; code: string } | null;

async function startRanks(
  scenario: string,
  options: { world?: number; only?: number[]; timeoutMs?: number; args?: string[] } = {},
): Promise<StartedProcess[]> {
  const world = options.world ?? 2;
  const port = await freePort();
  const ranks = options.only ?? Array.from({ length: world }, (_, rank) => rank);
  return ranks.map((rank) =>
    startProcess(process.execPath, [rankScript, scenario, ...(options.args ?? [])], {
      env: {
        ...launchVariables(rank, world, port),
        TEST_TIMEOUT_MS: String(options.timeoutMs ?? 5000),
      },
      label: `rank ${rank} (${scenario})`,
    }),
  );
}

async function results(ranks: StartedProcess[], ms = 60_000): Promise<RankResult[]> {
  const ended = await Promise.all(ranks.map((rank) => endsWithin(rank, ms)));
  ended.forEach((end, i) => {
    if (end.code !== 0) throw new Error(`${ranks[i]!.label} failed:\n${ranks[i]!.stderr}`);
  });
  return ranks.map((rank) => lastJson<RankResult>(rank));
}

describeWithGloo('the addon process group (Gloo, 2 ranks)', () => {
  afterEach(killAll);

  test('collectives and the store give every rank the same answers', async () => {
    const [zero, one] = await results(await startRanks('collectives'));
    for (const result of [zero!, one!]) {
      expect(result.sum).toEqual([3, 10]);
      expect(result.sum32).toEqual([1, 1]);
      expect(result.gathered).toEqual([0, 0.25, 1, 1.25]);
      expect(result.broadcast).toEqual([8]);
      expect(result.exchanged).toEqual(['rank-0', 'rank-1']);
      expect(result.awaited).toBe('hello from 0');
      expect(result.total).toBe(3);
      expect(result.failure).toBeNull();
      expect(result.info).toEqual({
        rank: result.rank,
        worldSize: 2,
        backend: 'gloo',
        device: 'cpu',
      });
      expect((result.afterLeave as ErrorResult)?.message).toMatch(/not joined|left/);
    }
    // Rank 0 adds 1 and rank 1 adds 2, in either order: the later one sees 3.
    expect([zero!.added, one!.added]).toContain(3);
  }, 90_000);

  test('torchrun --no-python starts ranks that join through its agent store', async () => {
    const port = await freePort();
    const launcher = startProcess(
      torchrun,
      [
        '--no-python',
        '--nproc-per-node',
        '2',
        '--master-port',
        String(port),
        process.execPath,
        rankScript,
        'collectives',
      ],
      { env: { TEST_TIMEOUT_MS: '10000' }, label: 'torchrun' },
    );
    const end = await endsWithin(launcher, 120_000);
    expect({ code: end.code, stderr: end.code === 0 ? '' : launcher.stderr }).toEqual({
      code: 0,
      stderr: '',
    });
    const lines = launcher.stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as RankResult);
    expect(lines.map((line) => line.rank).sort()).toEqual([0, 1]);
    for (const line of lines) {
      expect(line.agentStore).toBe(true);
      expect(line.sum).toEqual([3, 10]);
      expect(line.exchanged).toEqual(['rank-0', 'rank-1']);
    }
  }, 150_000);

  test('data-parallel gradients equal one process training the same global batches', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mentallam-gradsync-'));
    const modelDir = join(dir, 'model');
    await Classifier.createRandom({}, modelDir, 11);
    // Steps of 2, 3 and 1 micro-batches of unequal sizes: rank 1 has none in the last step.
    let state = 12345;
    const random = () => (state = (state * 1103515245 + 12345) % 2147483648) / 2147483648;
    const microBatch = (rows: number, seqLen: number) => {
      const ids: number[] = [];
      const mask: number[] = [];
      for (let r = 0; r < rows; r++) {
        const length = 3 + Math.floor(random() * (seqLen - 3));
        for (let t = 0; t < seqLen; t++) {
          ids.push(t < length ? 3 + Math.floor(random() * 990) : 0);
          mask.push(t < length ? 1 : 0);
        }
      }
      const labels = Array.from({ length: rows }, () => (random() < 0.5 ? 0 : 1));
      return { ids, mask, labels };
    };
    const steps = [
      [microBatch(2, 9), microBatch(3, 7)],
      [microBatch(3, 8), microBatch(2, 11), microBatch(2, 6)],
      [microBatch(3, 10)],
    ];
    const ranks = await startRanks('grad-sync', {
      args: [modelDir, join(dir, 'ddp'), JSON.stringify(steps)],
      timeoutMs: 20_000,
    });
    const [zero, one] = await results(ranks, 120_000);

    const single = await Classifier.load({
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
    const gradNorms: number[] = [];
    for (const step of steps) {
      let gradNorm = Number.NaN;
      for (let i = 0; i < step.length; i++) {
        const b = step[i]!;
        const result = await single.trainStep(
          {
            inputIds: Int32Array.from(b.ids),
            attentionMask: Uint8Array.from(b.mask),
            labels: Float32Array.from(b.labels),
            batchSize: b.labels.length,
            seqLen: b.ids.length / b.labels.length,
          },
          { lr: 1e-2, maxGradNorm: 1, accumulate: i < step.length - 1 },
        );
        gradNorm = result.gradNorm;
      }
      gradNorms.push(gradNorm);
    }
    await single.saveAdapter(join(dir, 'single'));
    single.dispose();

    for (const rank of [zero!, one!]) {
      (rank.gradNorms as number[]).forEach((norm, i) => expect(norm).toBeCloseTo(gradNorms[i]!, 5));
    }
    // The last step: rank 0 ran its micro-batch with the sync armed (every bucket started in
    // backward), rank 1 had none (a sync-only step).
    const stats0 = zero!.stats as { buckets: number; startedInBackward: number; steps: number };
    const stats1 = one!.stats as typeof stats0;
    expect(stats0.buckets).toBeGreaterThan(2);
    expect(stats0).toEqual({
      buckets: stats0.buckets,
      startedInBackward: stats0.buckets,
      steps: 3,
    });
    expect(stats1).toEqual({ buckets: stats0.buckets, startedInBackward: 0, steps: 3 });

    const file = (name: string) => join(dir, name, 'adapter_model.safetensors');
    const entries = await inspectSafetensors(file('single'));
    expect(entries.length).toBeGreaterThan(10);
    let worst = 0;
    for (const { name } of entries) {
      const reference = (await readSafetensorsTensor(file('single'), name)).data;
      const ranksData = await Promise.all(
        ['ddp/rank_0', 'ddp/rank_1'].map(
          async (rank) => (await readSafetensorsTensor(file(rank), name)).data,
        ),
      );
      // Both ranks took the very same steps.
      expect(Array.from(ranksData[1]!)).toEqual(Array.from(ranksData[0]!));
      for (let i = 0; i < reference.length; i++)
        worst = Math.max(worst, Math.abs(reference[i]! - ranksData[0]![i]!));
    }
    expect(worst).toBeLessThan(1e-5);
  }, 180_000);

  test('a rank that dies is named by the others at once', async () => {
    const ranks = await startRanks('die', { timeoutMs: 5000 });
    const end = await endsWithin(ranks[1]!, 60_000);
    expect(end.code).toBe(3);
    const [zero] = await results([ranks[0]!]);
    const pid = ranks[1]!.child.pid!;
    expect(zero!.failure).toMatch(new RegExp(`^rank 1 \\(pid ${pid} on .+\\) has exited`));
    const collective = zero!.collective as ErrorResult;
    expect(collective?.code).toBe('ERR_NATIVE_DISTRIBUTED');
    expect(collective?.message).toContain('rank 1 (pid');
  }, 90_000);

  test('a rank that hangs fails the collective after the timeout, named', async () => {
    const ranks = await startRanks('hang', { timeoutMs: 3000 });
    await waitFor(
      () => /T/.test(processState(ranks[1]!.child.pid!)),
      60_000,
      'rank 1 to stop itself',
    );
    const [zero] = await results([ranks[0]!]);
    killTree(ranks[1]!);
    const collective = zero!.collective as ErrorResult;
    expect(collective?.code).toBe('ERR_NATIVE_DISTRIBUTED');
    expect(collective?.message).toMatch(/a sum with a hung peer \(collective #\d+\) failed: /);
    expect(collective?.message).toMatch(/rank 1 \(pid \d+ on .+\) has given no sign of life/);
    expect(zero!.collectiveSeconds as number).toBeGreaterThanOrEqual(2.5);
    expect(zero!.collectiveSeconds as number).toBeLessThan(25);
  }, 90_000);

  test('a rank that stops with an error tells the others why', async () => {
    const [zero] = await results(await startRanks('error-exit'));
    const awaitError = zero!.awaitError as ErrorResult;
    expect(awaitError?.code).toBe('ERR_NATIVE_DISTRIBUTED');
    expect(awaitError?.message).toMatch(
      /waiting for 'never-published': rank 1 \(pid \d+ on .+\) stopped with an error: rank 1 ran out of ideas/,
    );
  }, 90_000);

  test('a rank whose peers never come gives up after the timeout, saying where it waited', async () => {
    const [alone] = await results(await startRanks('join-alone', { only: [0], timeoutMs: 2000 }));
    const error = alone!.error as ErrorResult;
    expect(error?.code).toBe('ERR_NATIVE_DISTRIBUTED');
    expect(error?.message).toMatch(
      /rank 0 of 2 joining the process group at 127\.0\.0\.1:\d+ failed within training\.distributed\.timeout_s/,
    );
    expect(alone!.seconds as number).toBeLessThan(30);
  }, 90_000);
});

/** The state letter of /proc/<pid>/stat ('T' when stopped). */
function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return '';
  }
}
