#!/usr/bin/env node
// mentallam's native Classifier against transformers + peft, side by side on this machine, one
// process per measurement (so that each peak memory figure is its own). Three benches:
//
//   npm run bench:native -- [--layers 12] [--hidden 576] [--heads 9] [--kv-heads 3]
//     [--intermediate 1536] [--vocab 1000] [--seq 256] [--batch 8] [--r 8] [--steps 3]
//     [--warmup 1] [--threads N] [--forward-steps 10]
//       CPU, fp32, a random Llama of that shape: ms per train step and peak RSS with gradient
//       checkpointing off/on, batch-1 forward of the merged model, and the GEMM floor.
//
//   npm run bench:native -- --model smollm2 [--seq 256] [--batch 8] [--steps 3] [--threads N]
//       CPU, fp32, SmolLM2-135M's REAL weights (models/smollm2/*.gguf; transformers loads the
//       same file with gguf_file=, dequantized): train step and merged batch-1 forward.
//
//   npm run bench:native -- --device cuda [--shape llama2-7b|smollm2|all] [--layers N]
//     [--seq 512] [--batch 8] [--r 8] [--steps 5] [--warmup 2] [--peak-tflops X]
//     (--device cpu --shape smollm2 --layers 1 --seq 32 ... runs the same bench on the CPU, to
//     check the script on a machine without a GPU: its figures mean nothing)
//       GPU, bf16 base with fp32 adapters: mentallam DoRA against peft DoRA and peft LoRA (r=8 on
//       all seven projections) on random weights of a Llama-2-7B layer shape (hidden 4096,
//       intermediate 11008, 32 heads, no GQA; all 32 layers unless --layers) and of SmolLM2-135M's
//       shape: ms per train step, tokens/s, peak GPU memory (the allocator's max allocated) and
//       MFU. FLOPs per step: 6 x (parameters of the adapted projections) x tokens + attention
//       12 x layers x batch x seq^2 x hidden (PaLM's count, appendix B), over the card's dense
//       bf16 peak (989 TFLOPS for an H100/H200 SXM, the datasheet figure; --peak-tflops for
//       another card). The frozen base needs no weight gradients, so the work really done is
//       nearer 4 x N x tokens: 6N-MFU overstates the hardware's use by up to 1.5x, as any LoRA
//       MFU quoted this way does.
//
// --out FILE writes the results as JSON as well (scripts/gpu-check.sh, the nightly workflow).
// Environment: MENTALLAM_ADDON (the addon; default build/Release/mentallam.node),
// MENTALLAM_BENCH_PYTHON (transformers + peft; default .venv/bin/python), MENTALLAM_BENCH_DIR
// (where the GPU bench writes its random checkpoints; default the OS temp folder: a 7B one in
// bf16 takes 13.5 GB).
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const self = fileURLToPath(import.meta.url);
const addonPath = resolve(
  process.env.MENTALLAM_ADDON || join(root, 'build', 'Release', 'mentallam.node'),
);
const python = process.env.MENTALLAM_BENCH_PYTHON || join(root, '.venv', 'bin', 'python');
const MODULES = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];

/** Shapes of the GPU bench (config.json keys). */
const SHAPES = {
  'llama2-7b': {
    hidden_size: 4096,
    intermediate_size: 11008,
    num_attention_heads: 32,
    num_key_value_heads: 32,
    num_hidden_layers: 32,
    vocab_size: 32000,
  },
  smollm2: {
    hidden_size: 576,
    intermediate_size: 1536,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    num_hidden_layers: 30,
    vocab_size: 49152,
  },
};

/** Dense bf16 peak by GPU name (vendor datasheets, without sparsity), in TFLOPS. */
const PEAK_BF16_TFLOPS = [
  [/H200/, 989],
  [/H100.*PCIe/, 756],
  [/H100/, 989],
  [/A100/, 312],
  [/L40S/, 362],
  [/L4\b/, 121],
];

const SMOLLM2_DIR = join(root, 'models', 'smollm2');

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
    'peak-tflops': 0,
  };
  const given = new Set();
  const rest = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) continue;
    const key = arg.slice(2);
    const value = argv[i + 1];
    i++;
    if (key in options) {
      options[key] = Number(value);
      given.add(key);
      if (!Number.isFinite(options[key])) throw new Error(`--${key} needs a number, got ${value}`);
    } else rest[key] = value;
  }
  return { options, rest, given };
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
  const addon = require(addonPath);
  if (options.threads) addon.setNumThreads(options.threads);
  const device = rest.device ?? 'cpu';
  const cuda = device.startsWith('cuda') ? addon.cuda : undefined;
  if (device.startsWith('cuda') && !cuda) throw new Error('the addon was built without CUDA');
  const clf = new addon.NativeClassifier();
  await clf.load({
    modelDir: rest.model,
    dora: {
      r: options.r,
      alpha: 2 * options.r,
      dropout: 0,
      useRslora: false,
      targetModules: MODULES,
    },
    seed: 0,
    device,
    ...(rest.dtype ? { dtype: rest.dtype } : {}),
    gradientCheckpointing: rest.checkpointing === '1',
  });
  const vocab = clf.info().vocabSize;
  const times = [];
  const rows = rest.mode === 'train' ? options.batch : 1;
  const cells = rows * options.seq;
  const inputIds = new Int32Array(cells);
  for (let i = 0; i < cells; i++) inputIds[i] = 3 + ((i * 7919) % (vocab - 3));
  const batch = {
    inputIds,
    attentionMask: new Uint8Array(cells).fill(1),
    batchSize: rows,
    seqLen: options.seq,
    labels: new Int32Array(rows).map((_, i) => i % 2),
  };
  const steps = rest.mode === 'train' ? options.steps : options['forward-steps'];
  if (rest.mode !== 'train') await clf.merge();
  for (let i = 0; i < options.warmup + steps; i++) {
    cuda?.synchronize();
    const start = performance.now();
    if (rest.mode === 'train') await clf.trainStep(batch, { lr: 1e-4, maxGradNorm: 1 });
    else await clf.predictProba(batch);
    // The optimizer's kernels may still be queued when trainStep resolves.
    cuda?.synchronize();
    if (i >= options.warmup) times.push(performance.now() - start);
  }
  const result = { ms: median(times), peakRssMb: peakRssMb() };
  if (cuda) {
    result.peakGpuBytes = cuda.memoryStats().maxAllocated;
    result.torch = addon.info().torchVersion;
  }
  clf.dispose();
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

async function measure(command, args, timeoutMs = 20 * 60 * 1000) {
  const { stdout } = await run(command, args, {
    maxBuffer: 1 << 24,
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    env: { ...process.env, TRANSFORMERS_VERBOSITY: 'error', TQDM_DISABLE: '1' },
  });
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

/** A measurement that may fail (out of memory, a missing package): { error } instead. */
async function attempt(label, promise) {
  try {
    return await promise;
  } catch (error) {
    const text = `${error.stderr ?? ''}${error.message ?? error}`.trim().split('\n');
    const line = text.find((l) => /Error|error:|out of memory/i.test(l)) ?? text[text.length - 1];
    console.log(`  ${label}: FAILED: ${line}`);
    return { error: line };
  }
}

function ours(options, extra) {
  const common = Object.entries(options).flatMap(([k, v]) => [`--${k}`, String(v)]);
  const args = [self, ...common, '--child', '1'];
  for (const [key, value] of Object.entries(extra)) args.push(`--${key}`, String(value));
  return measure(process.execPath, args);
}

function theirs(options, extra) {
  const args = [
    join(root, 'scripts', 'bench_peft.py'),
    '--batch',
    String(options.batch),
    '--seq',
    String(options.seq),
    '--r',
    String(options.r),
    '--warmup',
    String(options.warmup),
    '--threads',
    String(options.threads),
  ];
  for (const [key, value] of Object.entries(extra)) args.push(`--${key}`, String(value));
  return measure(python, args);
}

const pad = (s, n) => String(s).padEnd(n);

function writeOut(rest, results) {
  if (rest.out) {
    writeFileSync(rest.out, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`results: ${rest.out}`);
  }
}

/** The CPU bench on a random Llama of the given shape (fp32). */
async function cpuBench(options, rest) {
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
    await require(addonPath).createRandomModel(model, config, 0);
    console.log(
      `config: ${options.layers} layers, hidden ${options.hidden}, heads ${options.heads}/` +
        `${options['kv-heads']} KV, intermediate ${options.intermediate}, seq ${options.seq}, ` +
        `batch ${options.batch}, DoRA r=${options.r} on 7 modules, fp32 CPU`,
    );
    const mine = (mode, checkpointing) => ours(options, { model, mode, checkpointing });
    const peft = (mode, checkpointing) =>
      theirs(options, {
        model,
        mode,
        checkpointing,
        steps: mode === 'train' ? options.steps : options['forward-steps'],
      });
    const rows = [];
    for (const ckpt of ['0', '1']) {
      const m = await mine('train', ckpt);
      const p = await peft('train', ckpt);
      rows.push({ what: `train step, checkpointing ${ckpt === '1' ? 'on' : 'off'}`, m, p });
    }
    rows.push({
      what: 'forward b1 merged',
      m: await mine('forward', '0'),
      p: await peft('forward', '0'),
    });
    // The projection GEMMs and attention alone (same libtorch, same threads): no implementation of
    // this fp32 step can be faster, so floor/peft bounds the time ratio reachable on this machine.
    const floor = await peft('floor', '0');
    printCpuRows(rows);
    const plain = rows[0].p.ms;
    console.log(
      `${pad('floor of a train step', 30)}${pad(`${floor.ms.toFixed(0)} ms`, 22)}` +
        `${pad('', 22)}floor/peft ${(floor.ms / plain).toFixed(2)}x (GEMMs + attention only)`,
    );
    writeOut(rest, { bench: 'cpu-random', options, rows, floor });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function printCpuRows(rows) {
  console.log(
    `${pad('', 30)}${pad('mentallam', 22)}${pad('transformers+peft', 22)}ratio (ours/peft)`,
  );
  for (const { what, m, p } of rows) {
    if (m.error || p.error) {
      console.log(
        `${pad(what, 30)}${m.error ? 'mentallam failed' : ''} ${p.error ? 'peft failed' : ''}`,
      );
      continue;
    }
    console.log(
      `${pad(what, 30)}${pad(`${m.ms.toFixed(0)} ms, ${m.peakRssMb.toFixed(0)} MB`, 22)}` +
        `${pad(`${p.ms.toFixed(0)} ms, ${p.peakRssMb.toFixed(0)} MB`, 22)}` +
        `time ${(m.ms / p.ms).toFixed(2)}x, peak RSS ${(m.peakRssMb / p.peakRssMb).toFixed(2)}x`,
    );
  }
}

/** The real-model bench: SmolLM2-135M's GGUF, dequantized to fp32 by both sides, on the CPU. */
async function realModelBench(options, rest) {
  const path =
    rest.model === 'smollm2'
      ? readdirSync(existsSync(SMOLLM2_DIR) ? SMOLLM2_DIR : root)
          .filter((name) => name.endsWith('.gguf'))
          .map((name) => join(SMOLLM2_DIR, name))[0]
      : resolve(rest.model);
  if (!path || !existsSync(path)) {
    throw new Error(
      `no SmolLM2 GGUF under ${SMOLLM2_DIR}: npm install (scripts/setup.mjs) downloads it`,
    );
  }
  console.log(
    `model: ${path} (real weights, dequantized to fp32 by both sides), seq ${options.seq}, ` +
      `batch ${options.batch}, DoRA r=${options.r} on 7 modules, CPU, ${options.threads || 'default'} threads`,
  );
  const mine = (mode) => ours(options, { model: path, mode, checkpointing: '0' });
  const peft = (mode) =>
    theirs(options, {
      gguf: path,
      mode,
      steps: mode === 'train' ? options.steps : options['forward-steps'],
    });
  const rows = [
    {
      what: 'train step',
      m: await attempt('mentallam train', mine('train')),
      p: await attempt('peft train', peft('train')),
    },
    {
      what: 'forward b1 merged',
      m: await attempt('mentallam forward', mine('forward')),
      p: await attempt('peft forward', peft('forward')),
    },
  ];
  printCpuRows(rows);
  writeOut(rest, { bench: 'cpu-real-model', model: path, options, rows });
}

/** Peak memory of a measurement: the GPU allocator's max allocated, else the process's peak RSS. */
function peakBytes(row) {
  return row.peakGpuBytes ?? row.peakRssMb * 2 ** 20;
}

/** Model FLOPs of one train step, as the header comment defines them. */
function stepFlops(shape, options) {
  const h = shape.hidden_size;
  const kv = (h / shape.num_attention_heads) * shape.num_key_value_heads;
  const perLayer = h * h + 2 * h * kv + h * h + 3 * h * shape.intermediate_size;
  const tokens = options.batch * options.seq;
  const adapted = perLayer * shape.num_hidden_layers;
  const attention = 12 * shape.num_hidden_layers * options.batch * options.seq ** 2 * h;
  return { adapted, flops: 6 * adapted * tokens + attention };
}

async function shapeBench(options, rest, given) {
  // GPU defaults differ from the CPU bench's: seq 512, 5 timed steps after 2 warm-up ones.
  const gpuOptions = {
    ...options,
    seq: given.has('seq') ? options.seq : 512,
    steps: given.has('steps') ? options.steps : 5,
    warmup: given.has('warmup') ? options.warmup : 2,
  };
  const device = rest.device ?? 'cuda';
  const wanted = (rest.shape ?? 'all') === 'all' ? Object.keys(SHAPES) : [rest.shape];
  for (const name of wanted) {
    if (!SHAPES[name])
      throw new Error(`--shape ${name}: expected ${Object.keys(SHAPES).join(', ')} or all`);
  }
  const base = process.env.MENTALLAM_BENCH_DIR || tmpdir();
  await mkdir(base, { recursive: true });
  const work = await mkdtemp(join(base, 'mentallam-gpu-bench-'));
  const results = { bench: 'shapes', device, options: gpuOptions, shapes: [] };
  try {
    for (const name of wanted) {
      const shape = {
        ...SHAPES[name],
        ...(given.has('layers') ? { num_hidden_layers: options.layers } : {}),
      };
      const config = {
        ...shape,
        max_position_embeddings: Math.max(4096, gpuOptions.seq),
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        pad_token_id: 0,
        bos_token_id: 1,
        eos_token_id: 2,
        num_labels: 2,
        tie_word_embeddings: false,
      };
      const model = join(work, name);
      console.log(
        `\n${name}: ${shape.num_hidden_layers} layers, hidden ${shape.hidden_size}, ` +
          `intermediate ${shape.intermediate_size}, heads ${shape.num_attention_heads}/` +
          `${shape.num_key_value_heads} KV, vocab ${shape.vocab_size}; seq ${gpuOptions.seq}, ` +
          `batch ${gpuOptions.batch}, r=${gpuOptions.r} on all 7 projections, bf16 base, ` +
          `${gpuOptions.steps} timed steps after ${gpuOptions.warmup}`,
      );
      const made = await measure(python, [
        join(root, 'scripts', 'bench_peft.py'),
        '--mode',
        'make-model',
        '--config',
        JSON.stringify(config),
        '--out',
        model,
        '--dtype',
        'bfloat16',
        '--device',
        device,
      ]);
      console.log(
        `  random bf16 checkpoint: ${(made.parameters / 1e9).toFixed(2)} B parameters in ${made.seconds.toFixed(1)} s`,
      );
      const rows = {
        'mentallam DoRA': await attempt(
          'mentallam DoRA',
          ours(gpuOptions, { model, mode: 'train', device, dtype: 'bfloat16', checkpointing: '0' }),
        ),
        'peft DoRA': await attempt(
          'peft DoRA',
          theirs(gpuOptions, {
            model,
            mode: 'train',
            method: 'dora',
            device,
            dtype: 'bfloat16',
            steps: gpuOptions.steps,
          }),
        ),
        'peft LoRA': await attempt(
          'peft LoRA',
          theirs(gpuOptions, {
            model,
            mode: 'train',
            method: 'lora',
            device,
            dtype: 'bfloat16',
            steps: gpuOptions.steps,
          }),
        ),
      };
      await rm(model, { recursive: true, force: true });
      const card = rows['peft DoRA'].gpuName ?? rows['peft LoRA'].gpuName ?? '';
      const peak =
        options['peak-tflops'] ||
        PEAK_BF16_TFLOPS.find(([pattern]) => pattern.test(card))?.[1] ||
        0;
      const { adapted, flops } = stepFlops(shape, gpuOptions);
      const tokens = gpuOptions.batch * gpuOptions.seq;
      console.log(
        `  GPU: ${card || 'unknown'}; peak assumed ${peak ? `${peak} TFLOPS bf16 dense` : 'unknown (--peak-tflops)'}; ` +
          `model FLOPs per step ${(flops / 1e12).toFixed(1)} T (6 x ${(adapted / 1e9).toFixed(2)} B adapted ` +
          `parameters x ${tokens} tokens + attention)`,
      );
      const memory = device.startsWith('cuda') ? 'peak GPU' : 'peak RSS';
      console.log(
        `  ${pad('', 16)}${pad('ms/step', 10)}${pad('tokens/s', 11)}${pad(memory, 12)}MFU`,
      );
      for (const [what, row] of Object.entries(rows)) {
        if (row.error) {
          console.log(`  ${pad(what, 16)}failed: ${row.error}`);
          continue;
        }
        row.tokensPerSec = tokens / (row.ms / 1000);
        row.mfu = peak ? flops / (row.ms / 1000) / (peak * 1e12) : null;
        console.log(
          `  ${pad(what, 16)}${pad(row.ms.toFixed(1), 10)}${pad(row.tokensPerSec.toFixed(0), 11)}` +
            `${pad(`${(peakBytes(row) / 2 ** 30).toFixed(2)} GiB`, 12)}` +
            `${row.mfu === null ? 'n/a' : `${(100 * row.mfu).toFixed(1)} %`}`,
        );
      }
      const m = rows['mentallam DoRA'];
      const d = rows['peft DoRA'];
      const l = rows['peft LoRA'];
      const goals = {};
      if (!m.error && !d.error) goals['time vs peft DoRA (goal <= 0.55)'] = m.ms / d.ms;
      if (!m.error && !l.error) {
        goals['time vs peft LoRA (goal <= 1.10)'] = m.ms / l.ms;
        goals['peak memory vs peft LoRA (goal <= 1.00)'] = peakBytes(m) / peakBytes(l);
      }
      if (!m.error && m.mfu !== null) goals['MFU (goal >= 0.50)'] = m.mfu;
      for (const [goal, value] of Object.entries(goals))
        console.log(`  ${pad(goal, 42)}${value.toFixed(2)}`);
      results.shapes.push({
        name,
        shape,
        gpu: card,
        peakTflops: peak,
        flopsPerStep: flops,
        adaptedParameters: adapted,
        tokensPerStep: tokens,
        rows,
        goals,
      });
      writeOut(rest, results);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function main() {
  const { options, rest, given } = parseArgs(process.argv.slice(2));
  if (rest.child) return child(options, rest);
  if (rest.shape || rest.device?.startsWith('cuda')) return shapeBench(options, rest, given);
  if (rest.device && rest.device !== 'cpu')
    throw new Error(`--device ${rest.device}: expected cpu or cuda[:N]`);
  if (rest.model) return realModelBench(options, rest);
  return cpuBench(options, rest);
}

await main();
