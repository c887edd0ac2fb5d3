import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createRng } from '../../../src/infra/index.js';
import {
  bench,
  evaluateGate,
  formatLatencyReport,
  gatedLength,
  histogram,
  summarizeLatency,
  syntheticBatch,
} from '../../../src/bench/index.js';
import { fakeLoader, makeBaseDir, newLog, testConfig } from '../infer/fixtures.js';

/** A clock where every model call takes `ms(length)` milliseconds, exactly. */
function steppingClock(msFor: (call: number) => number) {
  let t = 0;
  let reads = 0;
  return () => {
    // Reads come in pairs around each timed call: start, then end.
    const value = t;
    reads += 1;
    if (reads % 2 === 1) t += msFor((reads - 1) / 2);
    return value;
  };
}

describe('latency statistics', () => {
  test('percentiles interpolate like numpy', () => {
    const s = summarizeLatency(64, [5, 1, 4, 2, 3]);
    expect(s).toMatchObject({ length: 64, runs: 5, min: 1, p50: 3, mean: 3, max: 5 });
    expect(s.p95).toBeCloseTo(4.8, 12);
    expect(s.p99).toBeCloseTo(4.96, 12);
    const many = summarizeLatency(
      1,
      Array.from({ length: 101 }, (_, i) => i),
    );
    expect([many.p50, many.p95, many.p99]).toEqual([50, 95, 99]);
    expect(() => summarizeLatency(1, [])).toThrow(RangeError);
  });

  test('histogram bins cover min..max, the last one closed', () => {
    const bins = histogram([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5);
    expect(bins.map((b) => b.count)).toEqual([2, 2, 2, 2, 3]);
    expect(bins[0]!.from).toBe(0);
    expect(bins[4]!.to).toBe(10);
    expect(histogram([3, 3, 3])).toEqual([{ from: 3, to: 3, count: 3 }]);
    expect(histogram([])).toEqual([]);
  });

  test('the text report has the figures and one bar per bin', () => {
    const text = formatLatencyReport([summarizeLatency(128, [10, 12, 11, 30])]);
    expect(text).toMatch(/^128 tokens, 4 runs: p50 11\.5 ms {2}p95 27\.3 ms/);
    expect(text.split('\n').filter((l) => l.includes('|'))).toHaveLength(10);
    expect(text).toMatch(/ 10\.0-12\.0 ms \|#{40} 2\n/);
  });

  test('the gated length is the longest within 256 tokens', () => {
    expect(gatedLength([64, 128, 256, 512])).toBe(256);
    expect(gatedLength([512, 100])).toBe(100);
    expect(gatedLength([512, 1024])).toBe(512);
  });

  test('gate: over the limit fails unless a reason is recorded', () => {
    const summaries = [summarizeLatency(128, [900, 1100, 1200]), summarizeLatency(512, [5000])];
    const fail = evaluateGate(summaries, { max_p95_ms: 1000, allow_slow: { reason: null } });
    expect(fail).toMatchObject({
      length: 128,
      overLimit: true,
      passed: false,
      allowSlowReason: null,
    });
    const allowed = evaluateGate(summaries, {
      max_p95_ms: 1000,
      allow_slow: { reason: ' 7B on CPU ' },
    });
    expect(allowed).toMatchObject({ overLimit: true, passed: true, allowSlowReason: '7B on CPU' });
    const blank = evaluateGate(summaries, { max_p95_ms: 1000, allow_slow: { reason: '  ' } });
    expect(blank.passed).toBe(false);
    expect(evaluateGate(summaries, { max_p95_ms: 1200, allow_slow: { reason: null } }).passed).toBe(
      true,
    );
  });

  test('synthetic inputs: seeded ids in range, BOS first, no padding', () => {
    const a = syntheticBatch(16, 400, createRng(1), { bosTokenId: 1, batchSize: 2 });
    const b = syntheticBatch(16, 400, createRng(1), { bosTokenId: 1, batchSize: 2 });
    expect(a).toEqual(b);
    expect(a.inputIds[0]).toBe(1);
    expect(a.inputIds[16]).toBe(1);
    expect([...a.inputIds].every((id) => id === 1 || (id >= 3 && id < 400))).toBe(true);
    expect([...a.attentionMask].every((m) => m === 1)).toBe(true);
  });
});

describe('bench() with an injected clock', () => {
  let root: string;
  let baseDir: string;
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'mentallam-bench-'));
    baseDir = await makeBaseDir(join(root, 'base'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function runBench(msPerCall: number, reason: string | null) {
    const config = await testConfig([
      'bench.lengths=[32,64]',
      'bench.warmup=2',
      'bench.runs=5',
      'bench.max_p95_ms=1000',
      ...(reason ? [`bench.allow_slow.reason="${reason}"`] : []),
    ]);
    const log = newLog();
    const result = await bench({
      config,
      base: baseDir,
      outDir: join(root, `out-${msPerCall}-${reason ?? 'none'}`),
      loadModel: fakeLoader(log),
      now: steppingClock(() => msPerCall),
      plot: false,
    });
    return { result, log };
  }

  test('under the limit: exit 0, warm-up calls untimed, model merged once', async () => {
    const { result, log } = await runBench(250, null);
    expect(result.exitCode).toBe(0);
    expect(result.summaries.map((s) => [s.length, s.runs, s.p50, s.p95, s.max])).toEqual([
      [32, 5, 250, 250, 250],
      [64, 5, 250, 250, 250],
    ]);
    expect(result.headline).toEqual({ latency_cpu_ms_p50: 250, latency_cpu_ms_p95: 250 });
    expect(log.batches).toHaveLength(2 * (2 + 5));
    expect(log.batches.map((b) => b.seqLen)).toEqual([...Array(7).fill(32), ...Array(7).fill(64)]);
    expect(log.merges).toBe(1);
    expect(log.loads[0]).toMatchObject({ device: 'cpu', modelDir: baseDir });
    const saved = JSON.parse(readFileSync(join(result.outDir, 'bench.json'), 'utf8'));
    expect(saved.gate).toMatchObject({ length: 64, passed: true });
  });

  test('over the limit: exit 1', async () => {
    const { result } = await runBench(1500, null);
    expect(result.gate).toMatchObject({ length: 64, p95: 1500, overLimit: true, passed: false });
    expect(result.exitCode).toBe(1);
  });

  test('over the limit with bench.allow_slow.reason: exit 0, reason kept', async () => {
    const { result } = await runBench(1500, 'a 7B model on CPU');
    expect(result.exitCode).toBe(0);
    expect(result.gate.allowSlowReason).toBe('a 7B model on CPU');
  });

  test('renders the histogram as SVG and PNG', async () => {
    const config = await testConfig(['bench.lengths=[16,32]', 'bench.warmup=0', 'bench.runs=8']);
    let n = 0;
    const result = await bench({
      config,
      base: baseDir,
      outDir: join(root, 'plot'),
      loadModel: fakeLoader(),
      now: () => (n += 7) * (n % 3 === 0 ? 1.5 : 1),
    });
    const svg = join(result.outDir, 'latency_histogram.svg');
    expect(existsSync(svg) && existsSync(join(result.outDir, 'latency_histogram.png'))).toBe(true);
    expect(readFileSync(svg, 'utf8')).toMatch(/^<svg/);
    expect(readFileSync(svg, 'utf8')).toContain('16 tokens');
  });
});
