#!/usr/bin/env node
// Where a DoRA train step's time goes, on a real model (default: SmolLM2-135M's GGUF from the
// set-up). Two measurements, both relative so they hold on a busy machine:
//
// 1. A/B: train steps under variants that each change one thing against what `npm run
//    bench:native` times (no dropout, no padding, one fixed shape) towards what mentallam-train
//    runs (dropout, padded rows, a new length per batch), each in its own process, the variants
//    interleaved over rounds (order reversed every other round) so drifting load hits them alike.
//    Reported: median ms per step and its ratio to `bench`.
// 2. --profile <variant>: libtorch's op profiler over a few steps of one variant: self time per
//    op (nesting removed), the share of the step each group of ops takes, and any op whose input
//    has the vocabulary's size (nothing in a train step should touch the 49,152-row embedding
//    beyond the lookup).
//
//   node scripts/profile-step.mjs [--model models/smollm2] [--batch 16] [--seq 128] [--steps 4]
//     [--warmup 1] [--rounds 3] [--threads 0] [--variants bench,dropout,padding,shapes,train]
//     [--profile train] [--trace trace.json] [--top 25] [--json out.json]
//
// Needs the addon (npm run build:native); the model is read as training reads it (GGUF or a
// Hugging Face directory).
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);

/** What each variant changes; `bench` is what scripts/bench-native.mjs measures. */
const VARIANTS = {
  bench: { dropout: 0, padded: false, varyLength: false, env: {} },
  dropout: { dropout: 0.05, padded: false, varyLength: false, env: {} },
  padding: { dropout: 0, padded: true, varyLength: false, env: {} },
  shapes: { dropout: 0, padded: false, varyLength: true, env: {} },
  nocache: { dropout: 0, padded: false, varyLength: false, env: { MENTALLAM_CPU_CACHE: '0' } },
  train: { dropout: 0.05, padded: true, varyLength: true, env: {} },
  'train-nodropout': { dropout: 0, padded: true, varyLength: true, env: {} },
};

function parseArgs(argv) {
  const options = {
    model: join(root, 'models', 'smollm2'),
    batch: 16,
    seq: 128,
    steps: 4,
    warmup: 1,
    rounds: 3,
    threads: 0,
    r: 8,
    variants: 'bench,dropout,padding,shapes,train',
    profile: '',
    trace: '',
    top: 25,
    json: '',
    child: '',
  };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in options)) throw new Error(`unknown option ${argv[i]}`);
    const value = argv[++i];
    options[key] = typeof options[key] === 'number' ? Number(value) : value;
  }
  return options;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A seeded generator, so every variant trains on the same ids. */
function rng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * One micro-batch as the engine collates it: ids from [3, vocab) (never the pad id), right
 * padding with `padId`. Padded rows are 50-100 % of the batch's length, as length-bucketed real
 * prompts; a varying length draws the batch's length from 70-100 % of `seq` (step by step).
 */
function makeBatch(options, variant, vocab, padId, random) {
  const seqLen = variant.varyLength
    ? Math.max(8, Math.round(options.seq * (0.7 + 0.3 * random())))
    : options.seq;
  const inputIds = new Int32Array(options.batch * seqLen).fill(padId);
  const attentionMask = new Uint8Array(options.batch * seqLen);
  const labels = new Float32Array(options.batch);
  for (let b = 0; b < options.batch; b++) {
    const length = variant.padded
      ? Math.max(1, Math.round(seqLen * (0.5 + 0.5 * random())))
      : seqLen;
    for (let t = 0; t < length; t++) {
      inputIds[b * seqLen + t] = 3 + Math.floor(random() * (vocab - 3));
      attentionMask[b * seqLen + t] = 1;
    }
    // One full row, so the batch has the length it was collated to.
    if (b === 0)
      for (let t = length; t < seqLen; t++) {
        inputIds[t] = 3 + Math.floor(random() * (vocab - 3));
        attentionMask[t] = 1;
      }
    labels[b] = random() < 0.3 ? 1 : 0;
  }
  return { inputIds, attentionMask, labels, batchSize: options.batch, seqLen };
}

/** Op name -> group, for the share table. Self times, so a group never counts a child twice. */
function groupOf(name) {
  if (/scaled_dot_product|flash_attention|_efficient_attention|attention_math/.test(name))
    return 'attention (SDPA)';
  if (/^aten::(mm|addmm|bmm|matmul|linear|baddbmm|_mm)/.test(name)) return 'matrix products';
  if (/bernoulli|dropout/.test(name)) return 'dropout (masks)';
  if (/repeat_interleave|index_select|index|gather|scatter|embedding/.test(name))
    return 'gather / repeat (GQA, lookup)';
  if (
    /^aten::(copy_|to|_to_copy|clone|contiguous|cat|stack|empty|zeros|ones|fill_|resize_)/.test(
      name,
    )
  )
    return 'copies / allocation';
  if (/masked_fill|tril|logical_|eq|ne$|aten::ne|where/.test(name)) return 'masks';
  if (/lerp_|addcmul_|addcdiv_|linalg_vector_norm|norm/.test(name)) return 'norms / optimizer';
  if (/^aten::/.test(name)) return 'elementwise / reductions';
  return 'autograd / other (self)';
}

/** Self time per event: its duration minus its direct children's, per thread (nesting). */
function selfTimes(events) {
  const byThread = new Map();
  for (const event of events) {
    if (!byThread.has(event.thread)) byThread.set(event.thread, []);
    byThread.get(event.thread).push({ ...event, end: event.startUs + event.durationUs, child: 0 });
  }
  const out = [];
  for (const list of byThread.values()) {
    list.sort((a, b) => a.startUs - b.startUs || b.durationUs - a.durationUs);
    const stack = [];
    for (const event of list) {
      while (stack.length > 0 && stack[stack.length - 1].end <= event.startUs) stack.pop();
      if (stack.length > 0) stack[stack.length - 1].child += event.durationUs;
      stack.push(event);
      out.push(event);
    }
  }
  return out.map((e) => ({ ...e, selfUs: Math.max(0, e.durationUs - e.child) }));
}

// Child: load the model under one variant, train, print one JSON line.
async function child(options) {
  const require = createRequire(import.meta.url);
  const addon = require(join(root, 'build', 'Release', 'mentallam.node'));
  const variant = VARIANTS[options.child];
  if (options.threads) addon.setNumThreads(options.threads);
  const config = await addon.loadLlamaConfig(options.model);
  const padId = config.pad_token_id ?? 0;
  const clf = new addon.NativeClassifier();
  const loadStarted = performance.now();
  await clf.load({
    modelDir: options.model,
    dora: {
      r: options.r,
      alpha: 2 * options.r,
      dropout: variant.dropout,
      useRslora: false,
      targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    },
    numLabels: 1,
    seed: 0,
    gradientCheckpointing: false,
    padTokenId: padId,
  });
  const loadMs = performance.now() - loadStarted;
  const random = rng(1234);
  const step = async () => {
    const batch = makeBatch(options, variant, config.vocab_size, padId, random);
    const began = performance.now();
    const cpuBegan = process.cpuUsage();
    await clf.trainStep(batch, { lr: 1e-4, maxGradNorm: 1 });
    const cpu = process.cpuUsage(cpuBegan);
    return {
      ms: performance.now() - began,
      cpuMs: (cpu.user + cpu.system) / 1000,
      // Kernel time: mostly page faults of freshly mapped activation buffers.
      sysMs: cpu.system / 1000,
      seqLen: batch.seqLen,
    };
  };
  for (let i = 0; i < options.warmup; i++) await step();
  const cacheBefore = addon.info().cpuCache;
  const profiling = options.profile === options.child;
  if (profiling) await addon.testing.startProfiler({ recordShapes: true });
  const samples = [];
  for (let i = 0; i < options.steps; i++) samples.push(await step());
  const events = profiling
    ? await addon.testing.stopProfiler(options.trace ? { tracePath: resolve(options.trace) } : {})
    : null;
  const cacheAfter = addon.info().cpuCache;
  const result = {
    variant: options.child,
    loadMs,
    threads: addon.info().threads,
    ms: samples.map((s) => s.ms),
    cpuMs: samples.map((s) => s.cpuMs),
    sysMs: samples.map((s) => s.sysMs),
    seqLens: samples.map((s) => s.seqLen),
    cache: {
      hits: cacheAfter.hits - cacheBefore.hits,
      misses: cacheAfter.misses - cacheBefore.misses,
      peakLiveMb: cacheAfter.peakLiveBytes / 2 ** 20,
    },
  };
  if (events) result.profile = summarizeProfile(events, samples, config.vocab_size, options.top);
  clf.dispose();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

function summarizeProfile(events, samples, vocab, top) {
  const timed = selfTimes(events);
  const wallUs = samples.reduce((sum, s) => sum + s.ms, 0) * 1000;
  const byName = new Map();
  const byGroup = new Map();
  for (const e of timed) {
    const entry = byName.get(e.name) ?? { name: e.name, selfUs: 0, calls: 0 };
    entry.selfUs += e.selfUs;
    entry.calls += 1;
    byName.set(e.name, entry);
    const group = groupOf(e.name);
    byGroup.set(group, (byGroup.get(group) ?? 0) + e.selfUs);
  }
  const recorded = [...byName.values()].reduce((sum, e) => sum + e.selfUs, 0);
  const share = (us) => Number(((100 * us) / wallUs).toFixed(1));
  // Matrix products by operand shapes: base projections ([tokens, in] x [in, out]) against the
  // adapters' rank-r products and the DoRA norms.
  const products = new Map();
  for (const e of timed) {
    if (e.name !== 'aten::mm') continue;
    const entry = products.get(e.shapes) ?? { shapes: e.shapes, selfUs: 0, calls: 0 };
    entry.selfUs += e.selfUs;
    entry.calls += 1;
    products.set(e.shapes, entry);
  }
  const vocabPattern = new RegExp(`\\b${vocab}\\b`);
  const vocabOps = new Map();
  for (const e of timed) {
    if (!vocabPattern.test(e.shapes)) continue;
    const key = `${e.name} ${e.shapes}`;
    vocabOps.set(key, (vocabOps.get(key) ?? 0) + e.selfUs);
  }
  return {
    steps: samples.length,
    wallMs: wallUs / 1000,
    recordedShare: share(recorded),
    groups: [...byGroup.entries()]
      .map(([group, us]) => ({ group, ms: us / 1000 / samples.length, share: share(us) }))
      .sort((a, b) => b.ms - a.ms),
    ops: [...byName.values()]
      .sort((a, b) => b.selfUs - a.selfUs)
      .slice(0, top)
      .map((e) => ({
        name: e.name,
        msPerStep: e.selfUs / 1000 / samples.length,
        callsPerStep: e.calls / samples.length,
        share: share(e.selfUs),
      })),
    matrixProducts: [...products.values()]
      .sort((a, b) => b.selfUs - a.selfUs)
      .slice(0, top)
      .map((e) => ({
        shapes: e.shapes,
        msPerStep: e.selfUs / 1000 / samples.length,
        callsPerStep: e.calls / samples.length,
        share: share(e.selfUs),
      })),
    vocabularySizedOps: [...vocabOps.entries()].map(([op, us]) => ({
      op,
      msPerStep: us / 1000 / samples.length,
    })),
  };
}

async function measure(options, name) {
  const args = [self, '--child', name];
  for (const key of ['model', 'batch', 'seq', 'steps', 'warmup', 'threads', 'r', 'profile']) {
    args.push(`--${key}`, String(options[key]));
  }
  if (options.trace) args.push('--trace', options.trace);
  args.push('--top', String(options.top));
  const { stdout } = await run(process.execPath, args, {
    cwd: root,
    env: { ...process.env, ...VARIANTS[name].env },
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').pop());
}

function printProfile(result) {
  const p = result.profile;
  console.log(
    `\nop profile of '${result.variant}': ${p.steps} steps, ${(p.wallMs / p.steps).toFixed(0)} ms/step, ` +
      `${p.recordedShare}% of the wall time inside recorded ops`,
  );
  console.log('\nshare of the step by group (self time):');
  for (const g of p.groups)
    console.log(
      `  ${g.group.padEnd(32)} ${g.ms.toFixed(0).padStart(8)} ms ${String(g.share).padStart(6)} %`,
    );
  console.log(`\ntop ops by self time:`);
  for (const op of p.ops) {
    console.log(
      `  ${op.name.slice(0, 70).padEnd(70)} ${op.msPerStep.toFixed(1).padStart(9)} ms ` +
        `${String(op.share).padStart(6)} % ${op.callsPerStep.toFixed(0).padStart(6)} calls`,
    );
  }
  console.log('\naten::mm by operand shapes:');
  for (const mm of p.matrixProducts) {
    console.log(
      `  ${mm.shapes.padEnd(40)} ${mm.msPerStep.toFixed(1).padStart(9)} ms ` +
        `${String(mm.share).padStart(6)} % ${mm.callsPerStep.toFixed(0).padStart(6)} calls`,
    );
  }
  console.log(
    p.vocabularySizedOps.length === 0
      ? '\nno op had an input of the vocabulary size'
      : `\nops with a vocabulary-sized input:\n${p.vocabularySizedOps.map((v) => `  ${v.op}: ${v.msPerStep.toFixed(1)} ms/step`).join('\n')}`,
  );
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.child) return child(options);
  const names = options.variants.split(',').filter(Boolean);
  for (const name of [...names, options.profile].filter(Boolean)) {
    if (!(name in VARIANTS)) throw new Error(`unknown variant ${name} (${Object.keys(VARIANTS)})`);
  }
  console.log(
    `model ${options.model}, batch ${options.batch} x ${options.seq} tokens, DoRA r=${options.r} ` +
      `on all 7 projections, ${options.steps} timed steps after ${options.warmup} warm-up, ` +
      `${options.rounds} rounds`,
  );
  const report = { options, rounds: [], profile: null };
  const samples = Object.fromEntries(names.map((n) => [n, []]));
  const cpuSamples = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < options.rounds; round++) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const result = await measure({ ...options, profile: '' }, name);
      report.rounds.push({ round, ...result });
      samples[name].push(...result.ms);
      cpuSamples[name].push(...result.cpuMs);
      console.log(
        `round ${round} ${name.padEnd(16)} median ${median(result.ms).toFixed(0).padStart(7)} ms/step, ` +
          `${median(result.cpuMs).toFixed(0).padStart(7)} CPU ms/step of which ` +
          `${median(result.sysMs).toFixed(0)} in the kernel (${result.threads} threads; ` +
          `cache hits ${result.cache.hits}, misses ${result.cache.misses})`,
      );
    }
  }
  if (names.length > 0) {
    // CPU time is what a busy machine disturbs least (a step's wall time there depends on who
    // else runs); wall time is what a user waits on an idle one.
    const base = names.includes('bench') ? median(samples.bench) : null;
    const cpuBase = names.includes('bench') ? median(cpuSamples.bench) : null;
    console.log('\nvariant            median ms/step   x bench   CPU ms/step   x bench');
    for (const name of names) {
      const m = median(samples[name]);
      const c = median(cpuSamples[name]);
      console.log(
        `${name.padEnd(18)} ${m.toFixed(0).padStart(14)} ${base ? (m / base).toFixed(2).padStart(9) : ''}` +
          ` ${c.toFixed(0).padStart(13)} ${cpuBase ? (c / cpuBase).toFixed(2).padStart(9) : ''}`,
      );
    }
  }
  if (options.profile) {
    report.profile = await measure(options, options.profile);
    printProfile(report.profile);
  }
  if (options.json) writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
