#!/usr/bin/env node
// mentallam's native Classifier vs transformers + peft (DoRA), side by side on this machine:
// ms per train step and peak RSS with gradient checkpointing off/on, and forward latency of the
// merged model (batch 1). Every measurement runs in its own process so peak RSS is its own.
//
//   npm run bench:native -- [--layers 12] [--hidden 576] [--heads 9] [--kv-heads 3]
//     [--intermediate 1536] [--vocab 1000] [--seq 256] [--batch 8] [--r 8] [--steps 3]
//     [--warmup 1] [--threads N] [--forward-steps 10]
import { execFile } from 'node:child_process';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);

function parseArgs(argv) {
  const options = {
    layers: 12,
    hidden: 576,
    heads: 9,
    'kv-heads': 3,
    intermediate: 1536,
    vocab: 1000,
    seq: 256,
    batch: 8,
    r: 8,
    steps: 3,
    warmup: 1,
    threads: 0,
    'forward-steps': 10,
  };
  const rest = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) continue;
    const key = arg.slice(2);
    const value = argv[i + 1];
    i++;
    if (key in options) options[key] = Number(value);
    else rest[key] = value;
  }
  return { options, rest };
}

function peakRssMb() {
  const line = readFileSync('/proc/self/status', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmHWM:'));
  return line ? Number(line.split(/\s+/)[1]) / 1024 : NaN;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// Child: one mentallam measurement; prints one JSON line.
async function child(options, rest) {
  const require = createRequire(import.meta.url);
  const addon = require(join(root, 'build', 'Release', 'mentallam.node'));
  if (options.threads) addon.setNumThreads(options.threads);
  const clf = new addon.NativeClassifier();
  await clf.load({
    modelDir: rest.model,
    dora: {
      r: options.r,
      alpha: 2 * options.r,
      dropout: 0,
      useRslora: false,
      targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
    },
    seed: 0,
    gradientCheckpointing: rest.checkpointing === '1',
  });
  const times = [];
  const rows = rest.mode === 'train' ? options.batch : 1;
  const cells = rows * options.seq;
  const inputIds = new Int32Array(cells);
  for (let i = 0; i < cells; i++) inputIds[i] = 3 + ((i * 7919) % (options.vocab - 3));
  const batch = {
    inputIds,
    attentionMask: new Uint8Array(cells).fill(1),
    batchSize: rows,
    seqLen: options.seq,
    labels: new Int32Array(rows).map((_, i) => i % 2),
  };
  if (rest.mode === 'train') {
    for (let i = 0; i < options.warmup + options.steps; i++) {
      const start = performance.now();
      await clf.trainStep(batch, { lr: 1e-4, maxGradNorm: 1 });
      if (i >= options.warmup) times.push(performance.now() - start);
    }
  } else {
    await clf.merge();
    for (let i = 0; i < options.warmup + options['forward-steps']; i++) {
      const start = performance.now();
      await clf.predictProba(batch);
      if (i >= options.warmup) times.push(performance.now() - start);
    }
  }
  clf.dispose();
  process.stdout.write(`${JSON.stringify({ ms: median(times), peakRssMb: peakRssMb() })}\n`);
}

async function measure(command, args) {
  const { stdout } = await run(command, args, {
    maxBuffer: 1 << 24,
    env: { ...process.env, TRANSFORMERS_VERBOSITY: 'error', TQDM_DISABLE: '1' },
  });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

async function main() {
  const { options, rest } = parseArgs(process.argv.slice(2));
  if (rest.child) return child(options, rest);
  const python = join(root, '.venv', 'bin', 'python');
  const work = await mkdtemp(join(tmpdir(), 'mentallam-bench-'));
  try {
    const model = join(work, 'model');
    await mkdir(model);
    const config = {
      architectures: ['LlamaForSequenceClassification'],
      model_type: 'llama',
      vocab_size: options.vocab,
      hidden_size: options.hidden,
      intermediate_size: options.intermediate,
      num_hidden_layers: options.layers,
      num_attention_heads: options.heads,
      num_key_value_heads: options['kv-heads'],
      max_position_embeddings: Math.max(2048, options.seq),
      rms_norm_eps: 1e-5,
      rope_theta: 10000.0,
      hidden_act: 'silu',
      initializer_range: 0.02,
      pad_token_id: 0,
      bos_token_id: 1,
      eos_token_id: 2,
      num_labels: 2,
      torch_dtype: 'float32',
      tie_word_embeddings: false,
    };
    const require = createRequire(import.meta.url);
    await require(join(root, 'build', 'Release', 'mentallam.node')).createRandomModel(
      model,
      config,
      0,
    );
    console.log(
      `config: ${options.layers} layers, hidden ${options.hidden}, heads ${options.heads}/` +
        `${options['kv-heads']} KV, intermediate ${options.intermediate}, seq ${options.seq}, ` +
        `batch ${options.batch}, DoRA r=${options.r} on 7 modules, fp32 CPU`,
    );
    const common = Object.entries(options).flatMap(([k, v]) => [`--${k}`, String(v)]);
    const ours = (mode, ckpt) =>
      measure(process.execPath, [
        self,
        ...common,
        '--child',
        '1',
        '--model',
        model,
        '--mode',
        mode,
        '--checkpointing',
        ckpt,
      ]);
    const theirs = (mode, ckpt) =>
      measure(python, [
        join(root, 'scripts', 'bench_peft.py'),
        '--model',
        model,
        '--mode',
        mode,
        '--checkpointing',
        ckpt,
        '--batch',
        String(options.batch),
        '--seq',
        String(options.seq),
        '--r',
        String(options.r),
        '--steps',
        String(mode === 'train' ? options.steps : options['forward-steps']),
        '--warmup',
        String(options.warmup),
        '--threads',
        String(options.threads),
      ]);
    const rows = [];
    for (const ckpt of ['0', '1']) {
      const m = await ours('train', ckpt);
      const p = await theirs('train', ckpt);
      rows.push({ what: `train step, checkpointing ${ckpt === '1' ? 'on' : 'off'}`, m, p });
    }
    rows.push({
      what: 'forward b1 merged',
      m: await ours('forward', '0'),
      p: await theirs('forward', '0'),
    });
    // The projection GEMMs and attention alone (same libtorch, same threads): no implementation of
    // this fp32 step can be faster, so floor/peft bounds the time ratio reachable on this machine.
    const floor = await theirs('floor', '0');
    const pad = (s, n) => String(s).padEnd(n);
    console.log(
      `${pad('', 30)}${pad('mentallam', 22)}${pad('transformers+peft', 22)}ratio (ours/peft)`,
    );
    for (const { what, m, p } of rows) {
      console.log(
        `${pad(what, 30)}${pad(`${m.ms.toFixed(0)} ms, ${m.peakRssMb.toFixed(0)} MB`, 22)}` +
          `${pad(`${p.ms.toFixed(0)} ms, ${p.peakRssMb.toFixed(0)} MB`, 22)}` +
          `time ${(m.ms / p.ms).toFixed(2)}x, peak RSS ${(m.peakRssMb / p.peakRssMb).toFixed(2)}x`,
      );
    }
    const plain = rows[0].p.ms;
    console.log(
      `${pad('floor of a train step', 30)}${pad(`${floor.ms.toFixed(0)} ms`, 22)}` +
        `${pad('', 22)}floor/peft ${(floor.ms / plain).toFixed(2)}x (GEMMs + attention only)`,
    );
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
