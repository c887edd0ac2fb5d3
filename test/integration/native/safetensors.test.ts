// safetensors I/O in the addon against Python's safetensors + torch (the .venv oracle), and its
// validation: every bad file is a rejected Promise naming the file, never a crash.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import {
  checkLlamaCheckpoint,
  inspectSafetensors,
  readSafetensorsTensor,
  writeLlamaConfig,
  writeSafetensors,
} from '../../../src/native/index.js';

const python = resolve('.venv', 'bin', 'python');
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mentallam-safetensors-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** Runs a Python snippet in the .venv with argv; returns its stdout parsed as JSON. */
function py(script: string, ...args: string[]): unknown {
  const result = spawnSync(python, ['-c', script, ...args], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`python failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as unknown;
}

/** A safetensors file from a header (object or raw text) and a data section. */
function rawFile(header: object | string, data: Buffer = Buffer.alloc(0)): Buffer {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(text.length));
  return Buffer.concat([prefix, text, data]);
}

let fileCounter = 0;
function put(bytes: Buffer, name = `f${fileCounter++}.safetensors`): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** The message of a rejected Promise (errors come from the addon's realm: compare text only). */
async function rejection(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => {
      expect(error).toHaveProperty('message');
      return (error as Error).message;
    },
  );
}

const floats = (n: number, seed: number): Float32Array =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 100 + i * 0.37) * (i + 1));

describe('round trips with Python safetensors', () => {
  test('files written by Python read back with the same names, dtypes, shapes and values', async () => {
    const path = join(dir, 'python.safetensors');
    const expected = py(
      `
import json, sys, torch
from safetensors.torch import save_file
g = torch.Generator().manual_seed(0)
t = {
  "w.f32": torch.randn(3, 5, generator=g),
  "w.f16": torch.randn(4, 2, generator=g).half(),
  "w.bf16": torch.randn(7, generator=g).bfloat16(),
  "w.f64": torch.randn(2, 2, generator=g).double(),
  "ids.i64": torch.tensor([[1, -2, 3]], dtype=torch.int64),
  "ids.i32": torch.tensor([4, 5], dtype=torch.int32),
  "mask.bool": torch.tensor([True, False, True]),
  "bytes.u8": torch.tensor([0, 7, 255], dtype=torch.uint8),
  "scalar": torch.tensor(2.5),
  "empty": torch.zeros(0, 3),
}
save_file(t, sys.argv[1], metadata={"format": "pt", "note": "caf\\u00e9"})
print(json.dumps({k: {"shape": list(v.shape), "dtype": str(v.dtype), "values": v.float().flatten().tolist()} for k, v in t.items()}))
`,
      path,
    ) as Record<string, { shape: number[]; dtype: string; values: number[] }>;
    const dtypes: Record<string, string> = {
      'torch.float32': 'F32',
      'torch.float16': 'F16',
      'torch.bfloat16': 'BF16',
      'torch.float64': 'F64',
      'torch.int64': 'I64',
      'torch.int32': 'I32',
      'torch.bool': 'BOOL',
      'torch.uint8': 'U8',
    };
    const entries = await inspectSafetensors(path);
    expect(entries.map((e) => e.name)).toEqual(Object.keys(expected).sort());
    for (const entry of entries) {
      const want = expected[entry.name]!;
      expect(entry.dtype).toBe(dtypes[want.dtype]);
      expect(entry.shape).toEqual(want.shape);
      expect(entry.file).toBe(path);
      const tensor = await readSafetensorsTensor(path, entry.name);
      expect(tensor.shape).toEqual(want.shape);
      expect(tensor.dtype).toBe(entry.dtype);
      // F16/BF16 -> F32 is exact, as is torch's .float(); F64 rounds the same way.
      expect(Array.from(tensor.data)).toEqual(want.values);
    }
  });

  test('files written here load in Python with the same values, dtypes and metadata', async () => {
    const path = join(dir, 'ours.safetensors');
    const a = floats(12, 1);
    const b = floats(6, 2);
    const c = floats(5, 3);
    await writeSafetensors(
      path,
      [
        { name: 'z.first', shape: [3, 4], data: a },
        { name: 'a.half', shape: [2, 3], data: b, dtype: 'F16' },
        { name: 'm.bf16', shape: [5], data: c, dtype: 'BF16' },
        { name: 'scalar', shape: [], data: Float32Array.of(-1.25) },
        { name: 'empty', shape: [0, 4], data: new Float32Array(0) },
      ],
      { format: 'pt', 'quote"d': 'line\nbreak' },
    );
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0); // padded like the Rust writer
    const loaded = py(
      `
import json, sys, torch
from safetensors import safe_open
out = {"tensors": {}, "expected": {}}
with safe_open(sys.argv[1], "pt") as f:
    out["metadata"] = f.metadata()
    for k in f.keys():
        t = f.get_tensor(k)
        out["tensors"][k] = {"dtype": str(t.dtype), "shape": list(t.shape), "values": t.float().flatten().tolist()}
src = json.loads(sys.argv[2])
for k, (vals, dt) in src.items():
    out["expected"][k] = torch.tensor(vals, dtype=torch.float32).to(getattr(torch, dt)).float().tolist()
print(json.dumps(out))
`,
      path,
      JSON.stringify({
        'z.first': [Array.from(a), 'float32'],
        'a.half': [Array.from(b), 'float16'],
        'm.bf16': [Array.from(c), 'bfloat16'],
      }),
    ) as {
      metadata: Record<string, string>;
      tensors: Record<string, { dtype: string; shape: number[]; values: number[] }>;
      expected: Record<string, number[]>;
    };
    expect(loaded.metadata).toEqual({ format: 'pt', 'quote"d': 'line\nbreak' });
    expect(loaded.tensors['z.first']).toEqual({
      dtype: 'torch.float32',
      shape: [3, 4],
      values: loaded.expected['z.first'],
    });
    expect(loaded.tensors['a.half']).toEqual({
      dtype: 'torch.float16',
      shape: [2, 3],
      values: loaded.expected['a.half'],
    });
    expect(loaded.tensors['m.bf16']).toEqual({
      dtype: 'torch.bfloat16',
      shape: [5],
      values: loaded.expected['m.bf16'],
    });
    expect(loaded.tensors.scalar).toEqual({ dtype: 'torch.float32', shape: [], values: [-1.25] });
    expect(loaded.tensors.empty).toEqual({ dtype: 'torch.float32', shape: [0, 4], values: [] });
    // And back through our reader: BF16 conversion equals torch's round-to-nearest-even.
    const back = await readSafetensorsTensor(path, 'm.bf16');
    expect(Array.from(back.data)).toEqual(loaded.expected['m.bf16']);
  });

  test('a write replaces the file atomically and leaves no temp files', async () => {
    const sub = join(dir, 'atomic');
    mkdirSync(sub);
    const path = join(sub, 'x.safetensors');
    await writeSafetensors(path, [{ name: 'x', shape: [2], data: Float32Array.of(1, 2) }]);
    await writeSafetensors(path, [{ name: 'y', shape: [1], data: Float32Array.of(3) }]);
    expect((await inspectSafetensors(path)).map((e) => e.name)).toEqual(['y']);
    const failed = writeSafetensors(path, [
      { name: 'd', shape: [1], data: Float32Array.of(1) },
      { name: 'd', shape: [1], data: Float32Array.of(2) },
    ]);
    expect(await rejection(failed)).toMatch(/duplicate tensor name 'd'/);
    expect((await inspectSafetensors(path)).map((e) => e.name)).toEqual(['y']);
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(sub)).toEqual(['x.safetensors']);
  });

  test('bad write arguments are TypeErrors at the call', () => {
    const path = join(dir, 'never.safetensors');
    expect(() =>
      writeSafetensors(path, [{ name: 'x', shape: [3], data: new Float32Array(2) }]),
    ).toThrow(/has 2 elements, shape needs 3/);
    expect(() =>
      writeSafetensors(path, [
        { name: 'x', shape: [1], data: new Float32Array(1), dtype: 'I8' as 'F32' },
      ]),
    ).toThrow(/dtype must be 'F32', 'BF16' or 'F16'/);
  });

  test('sharded model directories (index.json) and single-file directories', async () => {
    const model = join(dir, 'sharded');
    mkdirSync(model);
    py(
      `
import json, sys, os, torch
from safetensors.torch import save_file
d = sys.argv[1]
s1 = {"model.embed_tokens.weight": torch.arange(6.).reshape(3, 2), "model.norm.weight": torch.ones(2)}
s2 = {"score.weight": torch.tensor([[0.5, -0.5]]).bfloat16()}
save_file(s1, os.path.join(d, "model-00001-of-00002.safetensors"), metadata={"format": "pt"})
save_file(s2, os.path.join(d, "model-00002-of-00002.safetensors"), metadata={"format": "pt"})
wm = {k: "model-00001-of-00002.safetensors" for k in s1} | {k: "model-00002-of-00002.safetensors" for k in s2}
json.dump({"metadata": {"total_size": 36, "extra": "ignored"}, "weight_map": wm}, open(os.path.join(d, "model.safetensors.index.json"), "w"))
print("null")
`,
      model,
    );
    const entries = await inspectSafetensors(model);
    expect(entries.map((e) => [e.name, e.dtype, e.shape, e.file])).toEqual([
      ['model.embed_tokens.weight', 'F32', [3, 2], join(model, 'model-00001-of-00002.safetensors')],
      ['model.norm.weight', 'F32', [2], join(model, 'model-00001-of-00002.safetensors')],
      ['score.weight', 'BF16', [1, 2], join(model, 'model-00002-of-00002.safetensors')],
    ]);
    expect(Array.from((await readSafetensorsTensor(model, 'score.weight')).data)).toEqual([
      0.5, -0.5,
    ]);
    expect(
      Array.from((await readSafetensorsTensor(model, 'model.embed_tokens.weight')).data),
    ).toEqual([0, 1, 2, 3, 4, 5]);
    const missing = await rejection(
      readSafetensorsTensor(model, 'model.layers.3.mlp.up_proj.weight'),
    );
    expect(missing).toBe(
      `${join(model, 'model.safetensors.index.json')}: tensor 'model.layers.3.mlp.up_proj.weight' is missing`,
    );

    const single = join(dir, 'single');
    mkdirSync(single);
    await writeSafetensors(join(single, 'model.safetensors'), [
      { name: 'w', shape: [1], data: Float32Array.of(4) },
    ]);
    expect((await inspectSafetensors(single)).map((e) => e.name)).toEqual(['w']);
  });
});

describe('bad files are rejected with the file and the problem', () => {
  const f32 = (n: number): Buffer => Buffer.alloc(4 * n);

  test.each([
    ['empty file', Buffer.alloc(0), /too short for the 8-byte header length \(0 bytes\)/],
    ['too short', Buffer.from([1, 2, 3]), /too short for the 8-byte header length \(3 bytes\)/],
    [
      'header length past the end',
      (() => {
        const b = rawFile({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1));
        b.writeBigUInt64LE(BigInt(b.length), 0);
        return b;
      })(),
      /header length \d+ runs past the end of the file \(\d+ bytes\)/,
    ],
    [
      'absurd header length',
      (() => {
        const b = Buffer.alloc(16);
        b.writeBigUInt64LE(0xffffffffffffffffn, 0);
        return b;
      })(),
      /header length 18446744073709551615 exceeds the safetensors limit/,
    ],
    ['header not JSON', rawFile('{"x": {"dtype": "F32",'), /header: invalid JSON at line 1/],
    ['header not an object', rawFile('[1, 2]'), /header is not a JSON object/],
    [
      'trailing garbage after the header object',
      rawFile('{} x'),
      /invalid JSON at line 1, column 4: .*expected end of input/,
    ],
    [
      'unknown dtype',
      rawFile({ x: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, f32(1)),
      /tensor 'x' has unknown dtype 'F33'/,
    ],
    [
      'shape and offsets inconsistent',
      rawFile({ x: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, f32(5)),
      /tensor 'x': data_offsets \[0, 20\] hold 20 bytes, but dtype F32 and shape \[2, 3\] need 24/,
    ],
    [
      'offsets past the data section',
      rawFile({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32(2)),
      /tensor 'x': data_offsets \[0, 16\] run past the end of the data section \(8 bytes\)/,
    ],
    [
      'offsets reversed',
      rawFile({ x: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, f32(1)),
      /data_offsets \[4, 0\] end before they begin/,
    ],
    [
      'negative shape',
      rawFile({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)),
      /every shape entry must be a non-negative integer/,
    ],
    [
      'overlapping tensors',
      rawFile(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
        },
        f32(3),
      ),
      /tensors 'a' and 'b' overlap in the data section/,
    ],
    [
      'a hole between tensors',
      rawFile(
        {
          a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
          b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
        },
        f32(3),
      ),
      /bytes 4 to 8 of the data section belong to no tensor/,
    ],
    [
      'trailing bytes no tensor covers',
      rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(2)),
      /the data section has 8 bytes but the tensors cover 4 \(tensors must tile it exactly\)/,
    ],
    [
      'duplicate names',
      rawFile(
        '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
        f32(2),
      ),
      /duplicate name 'a' in the header/,
    ],
    [
      'duplicate keys inside an entry',
      rawFile('{"a":{"dtype":"F32","shape":[1],"dtype":"F16","data_offsets":[0,4]}}', f32(1)),
      /duplicate key 'dtype' in the header/,
    ],
    [
      'metadata that is not string to string',
      rawFile({ __metadata__: { format: 1 } }),
      /__metadata__ value 'format' must be a string/,
    ],
  ])('%s', async (_label, bytes, pattern) => {
    const path = put(bytes);
    // One call at a time: a second Promise rejecting before it is awaited would be reported as
    // an unhandled rejection.
    for (const call of [() => inspectSafetensors(path), () => readSafetensorsTensor(path, 'x')]) {
      const message = await rejection(call());
      expect(message.startsWith(`${path}:`) || message.startsWith(`${path} header:`)).toBe(true);
      expect(message).toMatch(pattern);
      expect(message.split('\n')).toHaveLength(1);
    }
  });

  test('missing tensor, missing file, directory without weights', async () => {
    const path = put(rawFile({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1)));
    expect(await rejection(readSafetensorsTensor(path, 'model.layers.3.mlp.up_proj.weight'))).toBe(
      `${path}: tensor 'model.layers.3.mlp.up_proj.weight' is missing`,
    );
    const nowhere = join(dir, 'nowhere.safetensors');
    expect(await rejection(inspectSafetensors(nowhere))).toBe(
      `${nowhere}: no such file or directory`,
    );
    const bare = join(dir, 'bare');
    mkdirSync(bare);
    expect(await rejection(inspectSafetensors(bare))).toBe(
      `${bare}: no model.safetensors or model.safetensors.index.json in this directory`,
    );
  });

  test('shard index naming a missing shard, or a tensor its shard lacks', async () => {
    const model = join(dir, 'bad-index');
    mkdirSync(model);
    const index = join(model, 'model.safetensors.index.json');
    await writeSafetensors(join(model, 'model-00001-of-00002.safetensors'), [
      { name: 'a', shape: [1], data: Float32Array.of(1) },
    ]);
    writeFileSync(
      index,
      JSON.stringify({
        metadata: {},
        weight_map: {
          a: 'model-00001-of-00002.safetensors',
          b: 'model-00002-of-00002.safetensors',
        },
      }),
    );
    expect(await rejection(inspectSafetensors(model))).toMatch(
      new RegExp(`^${index}: shard 'model-00002-of-00002.safetensors' does not exist`),
    );
    writeFileSync(
      index,
      JSON.stringify({
        weight_map: {
          a: 'model-00001-of-00002.safetensors',
          c: 'model-00001-of-00002.safetensors',
        },
      }),
    );
    expect(await rejection(inspectSafetensors(model))).toBe(
      `${index}: weight_map puts tensor 'c' in model-00001-of-00002.safetensors, but that shard does not hold it`,
    );
    writeFileSync(index, JSON.stringify({ weight_map: { a: '../elsewhere.safetensors' } }));
    expect(await rejection(inspectSafetensors(model))).toMatch(
      /is not a file name in this directory/,
    );
    writeFileSync(index, '{"weight_map": ');
    expect(await rejection(inspectSafetensors(model))).toMatch(
      new RegExp(`^${index}: invalid JSON at line 1, column 16`),
    );
  });

  test('a shape that disagrees with config.json names the file, tensor and both shapes', async () => {
    const model = join(dir, 'tiny-llama');
    mkdirSync(model);
    const [h, inter, vocab, heads, kv] = [8, 12, 10, 2, 1];
    const d = h / heads;
    await writeLlamaConfig(join(model, 'config.json'), {
      hidden_size: h,
      intermediate_size: inter,
      num_hidden_layers: 1,
      num_attention_heads: heads,
      num_key_value_heads: kv,
      vocab_size: vocab,
    });
    const shapes: [string, number[]][] = [
      ['model.embed_tokens.weight', [vocab, h]],
      ['model.layers.0.input_layernorm.weight', [h]],
      ['model.layers.0.self_attn.q_proj.weight', [heads * d, h]],
      ['model.layers.0.self_attn.k_proj.weight', [kv * d, h]],
      ['model.layers.0.self_attn.v_proj.weight', [kv * d, h]],
      ['model.layers.0.self_attn.o_proj.weight', [h, heads * d]],
      ['model.layers.0.post_attention_layernorm.weight', [h]],
      ['model.layers.0.mlp.gate_proj.weight', [inter, h]],
      ['model.layers.0.mlp.up_proj.weight', [inter, h]],
      ['model.layers.0.mlp.down_proj.weight', [h, inter]],
      ['model.norm.weight', [h]],
      ['lm_head.weight', [vocab, h]],
    ];
    const tensors = (override: Record<string, number[]> = {}) =>
      shapes.map(([name, shape]) => {
        const s = override[name] ?? shape;
        return { name, shape: s, data: new Float32Array(s.reduce((a, b) => a * b, 1)) };
      });
    const weights = join(model, 'model.safetensors');
    await writeSafetensors(weights, tensors());
    expect(await checkLlamaCheckpoint(model)).toEqual({
      checked: 11,
      hasScore: false,
      ignored: ['lm_head.weight'],
    });
    await writeSafetensors(weights, tensors({ 'model.layers.0.self_attn.k_proj.weight': [h, h] }));
    expect(await rejection(checkLlamaCheckpoint(model))).toBe(
      `${weights}: tensor 'model.layers.0.self_attn.k_proj.weight' has shape [8, 8], config.json says [4, 8]`,
    );
    await writeSafetensors(
      weights,
      tensors().filter((t) => t.name !== 'model.layers.0.mlp.up_proj.weight'),
    );
    expect(await rejection(checkLlamaCheckpoint(model))).toBe(
      `${weights}: tensor 'model.layers.0.mlp.up_proj.weight' is missing`,
    );
    // A score head for another number of labels is not used: the classifier draws a fresh one.
    const withScore = (labels: number) =>
      writeSafetensors(weights, [
        ...tensors(),
        { name: 'score.weight', shape: [labels, h], data: new Float32Array(labels * h) },
      ]);
    await withScore(3);
    expect(await checkLlamaCheckpoint(model)).toEqual({
      checked: 11,
      hasScore: false,
      ignored: ['lm_head.weight', 'score.weight'],
    });
    await withScore(2);
    expect(await checkLlamaCheckpoint(model)).toEqual({
      checked: 12,
      hasScore: true,
      ignored: ['lm_head.weight'],
    });
  });
});

/** xorshift32: a seeded stream so a failing corruption can be replayed. */
function rng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4294967296;
  };
}

describe('mutation: corrupted files never crash the process', () => {
  test('a few hundred seeded corruptions each resolve consistently or reject with an Error', async () => {
    const base = join(dir, 'mutation-base.safetensors');
    await writeSafetensors(
      base,
      [
        { name: 'model.embed_tokens.weight', shape: [4, 3], data: floats(12, 4) },
        { name: 'model.norm.weight', shape: [3], data: floats(3, 5), dtype: 'BF16' },
        { name: 'score.weight', shape: [2, 3], data: floats(6, 6), dtype: 'F16' },
        { name: 'scalar', shape: [], data: Float32Array.of(7) },
      ],
      { format: 'pt' },
    );
    const original = readFileSync(base);
    const headerEnd = 8 + Number(original.readBigUInt64LE(0));
    const next = rng(20240611);
    const int = (n: number): number => Math.floor(next() * n);
    const jsonish = Buffer.from('{}[]",:0123456789-.eE \\u"FBI86', 'latin1');
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 400; i++) {
      let bytes = Buffer.from(original);
      const kind = i % 6;
      if (kind === 0) {
        // random bytes anywhere in the header
        for (let k = 1 + int(4); k > 0; k--) bytes[8 + int(headerEnd - 8)] = int(256);
      } else if (kind === 1) {
        // JSON-significant characters in the header
        for (let k = 1 + int(3); k > 0; k--)
          bytes[8 + int(headerEnd - 8)] = jsonish[int(jsonish.length)]!;
      } else if (kind === 2) {
        // a corrupted length prefix
        if (next() < 0.5) bytes[int(8)] = int(256);
        else bytes.writeBigUInt64LE(BigInt(Math.max(0, headerEnd - 8 + int(33) - 16)), 0);
      } else if (kind === 3) {
        bytes = bytes.subarray(0, int(bytes.length)); // truncation
      } else if (kind === 4) {
        // a digit changed: shapes and offsets
        const digits = [...bytes.subarray(8, headerEnd).entries()].filter(
          ([, b]) => b >= 48 && b <= 57,
        );
        const [at] = digits[int(digits.length)]!;
        bytes[8 + at] = 48 + int(10);
      } else {
        // bytes appended, or a header byte removed (everything after it shifts)
        if (next() < 0.5) bytes = Buffer.concat([bytes, Buffer.alloc(1 + int(8))]);
        else {
          const at = 8 + int(headerEnd - 8);
          bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
        }
      }
      const path = join(dir, `mutant-${i}.safetensors`);
      writeFileSync(path, bytes);
      const outcome = await inspectSafetensors(path).then(
        async (entries) => {
          for (const entry of entries) {
            const tensor = await readSafetensorsTensor(path, entry.name).catch(
              (error: Error) => error,
            );
            if ('message' in tensor) {
              // a valid header with a dtype libtorch cannot convert: still a clean Error
              expect(tensor.message).toContain(path);
              continue;
            }
            expect(tensor.shape).toEqual(entry.shape);
            expect(tensor.data.length).toBe(entry.shape.reduce((a, b) => a * b, 1));
          }
          return 'ok';
        },
        (error: unknown) => {
          const message = (error as Error).message;
          expect(typeof message).toBe('string');
          expect(message).toContain(path);
          expect(message.split('\n')).toHaveLength(1);
          return 'error';
        },
      );
      if (outcome === 'ok') accepted++;
      else rejected++;
      rmSync(path);
    }
    expect(accepted + rejected).toBe(400);
    expect(rejected).toBeGreaterThan(200);
    // The process and the addon are still fine.
    expect((await inspectSafetensors(base)).length).toBe(4);
  });
});
