// GGUF in the addon: a tiny Llama written here (gguf-file.ts) is read, mapped to Hugging Face
// names and a LlamaConfig, and loaded as a Classifier; then a few hundred corrupted copies of it
// (truncations at every structural point, huge lengths and counts, bad codes, random bytes in
// the header) must each reject with an Error naming the file, in this process, never crash.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  checkLlamaCheckpoint,
  Classifier,
  inspectGguf,
  loadLlamaConfig,
  readGgufTensor,
  type DoraOptions,
} from '../../../src/native.js';
import { writeGguf, type GgufEntry, type GgufField, type GgufTensorSpec } from './gguf-file.js';

const DORA: DoraOptions = {
  r: 2,
  alpha: 4,
  dropout: 0,
  targetModules: ['q_proj', 'v_proj'],
  useRslora: false,
};

// A tiny Llama: vocab 40, hidden 32, 4 heads / 2 KV heads of 8, intermediate 64, one layer.
const VOCAB = 40;
const HIDDEN = 32;
const HEADS = 4;
const KV_HEADS = 2;
const HEAD_DIM = 8;
const FFN = 64;

/** Deterministic pseudo-random numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function f32Tensor(name: string, dims: number[], next: () => number, around = 0): GgufTensorSpec {
  const count = dims.reduce((a, b) => a * b, 1);
  const values = Float32Array.from({ length: count }, () => around + (next() - 0.5) * 0.2);
  return { name, type: 0, dims, data: new Uint8Array(values.buffer) };
}

/** F16 with exponents 2^-6 .. 2^-3: finite, and exact in float32. */
function f16Tensor(name: string, dims: number[], next: () => number): GgufTensorSpec {
  const count = dims.reduce((a, b) => a * b, 1);
  const bits = Uint16Array.from({ length: count }, () => {
    const sign = next() < 0.5 ? 0x8000 : 0;
    const exponent = 9 + Math.floor(next() * 4);
    return sign | (exponent << 10) | Math.floor(next() * 1024);
  });
  return { name, type: 1, dims, data: new Uint8Array(bits.buffer) };
}

/** Q8_0 blocks: a small f16 scale and 32 random int8 each. */
function q8Tensor(name: string, dims: number[], next: () => number): GgufTensorSpec {
  const blocks = dims.reduce((a, b) => a * b, 1) / 32;
  const data = new Uint8Array(blocks * 34);
  for (let b = 0; b < blocks; b++) {
    data[b * 34] = 0x00;
    data[b * 34 + 1] = 0x20; // 2^-7
    for (let j = 0; j < 32; j++) data[b * 34 + 2 + j] = Math.floor(next() * 256);
  }
  return { name, type: 8, dims, data };
}

function tinyLlama(): { metadata: GgufEntry[]; tensors: GgufTensorSpec[] } {
  const next = random(7);
  const tokens = Array.from({ length: VOCAB }, (_, i) => (i < 3 ? `<s${i}>` : `t${i}`));
  const metadata: GgufEntry[] = [
    { key: 'general.architecture', type: 'string', value: 'llama' },
    { key: 'general.name', type: 'string', value: 'tiny' },
    { key: 'general.alignment', type: 'uint32', value: 32 },
    { key: 'llama.block_count', type: 'uint32', value: 1 },
    { key: 'llama.context_length', type: 'uint32', value: 128 },
    { key: 'llama.embedding_length', type: 'uint32', value: HIDDEN },
    { key: 'llama.feed_forward_length', type: 'uint32', value: FFN },
    { key: 'llama.attention.head_count', type: 'uint32', value: HEADS },
    { key: 'llama.attention.head_count_kv', type: 'uint32', value: KV_HEADS },
    { key: 'llama.rope.freq_base', type: 'float32', value: 10000 },
    { key: 'llama.attention.layer_norm_rms_epsilon', type: 'float32', value: 1e-5 },
    { key: 'llama.rope.dimension_count', type: 'uint32', value: HEAD_DIM },
    { key: 'tokenizer.ggml.model', type: 'string', value: 'gpt2' },
    { key: 'tokenizer.ggml.tokens', type: 'array', elementType: 'string', value: tokens },
    {
      key: 'tokenizer.ggml.scores',
      type: 'array',
      elementType: 'float32',
      value: tokens.map((_, i) => -i / 2),
    },
    {
      key: 'tokenizer.ggml.token_type',
      type: 'array',
      elementType: 'int32',
      value: tokens.map((_, i) => (i < 3 ? 3 : 1)),
    },
    { key: 'tokenizer.ggml.bos_token_id', type: 'uint32', value: 1 },
    { key: 'tokenizer.ggml.eos_token_id', type: 'uint32', value: 2 },
    { key: 'tokenizer.ggml.padding_token_id', type: 'uint32', value: 0 },
    { key: 'tokenizer.ggml.add_bos_token', type: 'bool', value: true },
  ];
  const tensors = [
    q8Tensor('token_embd.weight', [HIDDEN, VOCAB], next),
    f32Tensor('blk.0.attn_norm.weight', [HIDDEN], next, 1),
    f32Tensor('blk.0.attn_q.weight', [HIDDEN, HEADS * HEAD_DIM], next),
    f16Tensor('blk.0.attn_k.weight', [HIDDEN, KV_HEADS * HEAD_DIM], next),
    f32Tensor('blk.0.attn_v.weight', [HIDDEN, KV_HEADS * HEAD_DIM], next),
    f32Tensor('blk.0.attn_output.weight', [HEADS * HEAD_DIM, HIDDEN], next),
    f32Tensor('blk.0.ffn_norm.weight', [HIDDEN], next, 1),
    q8Tensor('blk.0.ffn_gate.weight', [HIDDEN, FFN], next),
    f32Tensor('blk.0.ffn_up.weight', [HIDDEN, FFN], next),
    f32Tensor('blk.0.ffn_down.weight', [FFN, HIDDEN], next),
    f32Tensor('output_norm.weight', [HIDDEN], next, 1),
  ];
  return { metadata, tensors };
}

const tiny = tinyLlama();
const file = writeGguf(tiny.metadata, tiny.tensors);

let dir: string;
let valid: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mentallam-gguf-'));
  valid = join(dir, 'tiny.gguf');
  writeFileSync(valid, file.bytes);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** An Error from any realm (the addon's errors are not instances of the test realm's Error). */
function expectError(error: unknown): void {
  expect(Object.prototype.toString.call(error)).toBe('[object Error]');
}

/** The message of a rejected Promise. */
async function rejection(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    (value) => {
      if (value instanceof Classifier) value.dispose();
      throw new Error('expected a rejection');
    },
    (error: unknown) => {
      expectError(error);
      return (error as Error).message;
    },
  );
}

/**
 * llama.cpp's converter stores q/k rows in the order (head, half, i) where Hugging Face has
 * (head, i, half); row (h, half, i) of the Hugging Face tensor is row h*2d + 2i + half here.
 */
function unpermuteRows(data: Float32Array, rows: number, cols: number, heads: number) {
  const half = rows / heads / 2;
  const out = new Float32Array(data.length);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < half; i++) {
        const to = h * 2 * half + j * half + i;
        const from = h * 2 * half + 2 * i + j;
        out.set(data.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

describe('a valid GGUF Llama', () => {
  test('header, metadata, tensor infos and Hugging Face names', async () => {
    const inspection = await inspectGguf(valid);
    expect(inspection.version).toBe(3);
    expect(inspection.alignment).toBe(32);
    expect(inspection.dataOffset).toBe(file.dataOffset);
    const meta = inspection.metadata;
    expect(Object.keys(meta)).toEqual(tiny.metadata.map((e) => e.key));
    expect(meta['general.architecture']).toBe('llama');
    expect(meta['llama.embedding_length']).toBe(HIDDEN);
    expect(meta['llama.rope.freq_base']).toBe(10000);
    expect(meta['tokenizer.ggml.add_bos_token']).toBe(true);
    const tokens = meta['tokenizer.ggml.tokens'] as string[];
    expect(tokens).toHaveLength(VOCAB);
    expect(tokens.slice(0, 4)).toEqual(['<s0>', '<s1>', '<s2>', 't3']);
    const scores = meta['tokenizer.ggml.scores'];
    expect(Object.prototype.toString.call(scores)).toBe('[object Float32Array]');
    expect(Array.from(scores as Float32Array).slice(0, 3)).toEqual([-0, -0.5, -1]);
    const types = meta['tokenizer.ggml.token_type'];
    expect(Object.prototype.toString.call(types)).toBe('[object Int32Array]');
    expect(Array.from(types as Int32Array).slice(2, 4)).toEqual([3, 1]);

    expect(inspection.tensors.map((t) => [t.name, t.hfName, t.type, t.shape])).toEqual([
      ['token_embd.weight', 'model.embed_tokens.weight', 'Q8_0', [VOCAB, HIDDEN]],
      ['blk.0.attn_norm.weight', 'model.layers.0.input_layernorm.weight', 'F32', [HIDDEN]],
      ['blk.0.attn_q.weight', 'model.layers.0.self_attn.q_proj.weight', 'F32', [32, HIDDEN]],
      ['blk.0.attn_k.weight', 'model.layers.0.self_attn.k_proj.weight', 'F16', [16, HIDDEN]],
      ['blk.0.attn_v.weight', 'model.layers.0.self_attn.v_proj.weight', 'F32', [16, HIDDEN]],
      ['blk.0.attn_output.weight', 'model.layers.0.self_attn.o_proj.weight', 'F32', [HIDDEN, 32]],
      ['blk.0.ffn_norm.weight', 'model.layers.0.post_attention_layernorm.weight', 'F32', [HIDDEN]],
      ['blk.0.ffn_gate.weight', 'model.layers.0.mlp.gate_proj.weight', 'Q8_0', [FFN, HIDDEN]],
      ['blk.0.ffn_up.weight', 'model.layers.0.mlp.up_proj.weight', 'F32', [FFN, HIDDEN]],
      ['blk.0.ffn_down.weight', 'model.layers.0.mlp.down_proj.weight', 'F32', [HIDDEN, FFN]],
      ['output_norm.weight', 'model.norm.weight', 'F32', [HIDDEN]],
    ]);
    for (const tensor of inspection.tensors) {
      expect(tensor.offset % 32).toBe(0);
      expect(file.dataOffset + tensor.offset).toBe(file.tensorStarts[tensor.name]);
    }
  });

  test('tensors read as stored, and q/k un-permuted under their Hugging Face names', async () => {
    const stored = await readGgufTensor(valid, 'blk.0.attn_q.weight');
    const written = tiny.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!;
    expect(stored.shape).toEqual([32, HIDDEN]);
    expect(Array.from(stored.data)).toEqual(Array.from(new Float32Array(written.data.buffer)));
    const q = await readGgufTensor(valid, 'model.layers.0.self_attn.q_proj.weight');
    expect(q.name).toBe('blk.0.attn_q.weight');
    expect(Array.from(q.data)).toEqual(Array.from(unpermuteRows(stored.data, 32, HIDDEN, HEADS)));
    const kStored = await readGgufTensor(valid, 'blk.0.attn_k.weight');
    const k = await readGgufTensor(valid, 'model.layers.0.self_attn.k_proj.weight');
    expect(Array.from(k.data)).toEqual(
      Array.from(unpermuteRows(kStored.data, 16, HIDDEN, KV_HEADS)),
    );
    // Other tensors are the same under both names; lm_head is the tied embedding.
    const up = await readGgufTensor(valid, 'model.layers.0.mlp.up_proj.weight');
    expect(up.data).toEqual((await readGgufTensor(valid, 'blk.0.ffn_up.weight')).data);
    const head = await readGgufTensor(valid, 'lm_head.weight');
    expect(head.name).toBe('token_embd.weight');
    // Q8_0: scale 2^-7 times the int8.
    const embed = await readGgufTensor(valid, 'token_embd.weight');
    const raw = tiny.tensors[0]!.data;
    expect(embed.data[0]).toBe(((raw[2]! << 24) >> 24) / 128);
    expect(await rejection(readGgufTensor(valid, 'nope.weight'))).toMatch(
      /tiny\.gguf: tensor 'nope\.weight' \(nope\.weight\) is missing/,
    );
  });

  test('the config comes from the metadata, and the model loads from the file or its folder', async () => {
    const config = await loadLlamaConfig(valid);
    expect(config).toMatchObject({
      vocab_size: VOCAB,
      hidden_size: HIDDEN,
      intermediate_size: FFN,
      num_hidden_layers: 1,
      num_attention_heads: HEADS,
      num_key_value_heads: KV_HEADS,
      head_dim: HEAD_DIM,
      max_position_embeddings: 128,
      rope_theta: 10000,
      pad_token_id: 0,
      bos_token_id: 1,
      eos_token_id: 2,
      tie_word_embeddings: true,
      id2label: { '0': 'LABEL_0', '1': 'LABEL_1' },
    });
    expect(config.rms_norm_eps).toBeCloseTo(1e-5, 12);
    expect(await checkLlamaCheckpoint(valid)).toEqual({
      checked: 11,
      hasScore: false,
      ignored: [],
    });

    const folder = join(dir, 'folder');
    mkdirSync(folder);
    writeFileSync(join(folder, 'model.gguf'), file.bytes);
    for (const modelDir of [valid, folder]) {
      const clf = await Classifier.load({ modelDir, dora: DORA, seed: 1 });
      try {
        expect(clf.info()).toMatchObject({ numLayers: 1, hiddenSize: HIDDEN, vocabSize: VOCAB });
        expect(clf.info().padTokenId).toBe(0);
        const logits = await clf.predictLogits({
          inputIds: Int32Array.of(5, 9, 13, 0),
          attentionMask: Uint8Array.of(1, 1, 1, 0),
          batchSize: 1,
          seqLen: 4,
        });
        expect(logits.every(Number.isFinite)).toBe(true);
      } finally {
        clf.dispose();
      }
    }
    writeFileSync(join(folder, 'other.gguf'), file.bytes);
    expect(await rejection(Classifier.load({ modelDir: folder, dora: DORA, seed: 1 }))).toMatch(
      /holds 2 \.gguf files \(model\.gguf, other\.gguf\)/,
    );
  });
});

describe('RoPE settings from the metadata', () => {
  const variant = (name: string, extra: GgufEntry[], tensors = tiny.tensors): string => {
    const path = join(dir, name);
    writeFileSync(path, writeGguf([...tiny.metadata, ...extra], tensors).bytes);
    return path;
  };

  test('linear scaling is read; other scaling types and rope_freqs are refused by name', async () => {
    const linear = variant('linear.gguf', [
      { key: 'llama.rope.scaling.type', type: 'string', value: 'linear' },
      { key: 'llama.rope.scaling.factor', type: 'float32', value: 4 },
    ]);
    expect((await loadLlamaConfig(linear)).rope_scaling).toMatchObject({
      rope_type: 'linear',
      factor: 4,
    });
    const yarn = variant('yarn.gguf', [
      { key: 'llama.rope.scaling.type', type: 'string', value: 'yarn' },
      { key: 'llama.rope.scaling.factor', type: 'float32', value: 4 },
    ]);
    expect(await rejection(loadLlamaConfig(yarn))).toMatch(
      /yarn\.gguf: metadata llama\.rope\.scaling\.type is 'yarn', which is not supported \(supported: none, linear\)/,
    );
    const freqs = variant(
      'freqs.gguf',
      [],
      [...tiny.tensors, f32Tensor('rope_freqs.weight', [HEAD_DIM / 2], random(3), 1)],
    );
    const inspection = await inspectGguf(freqs);
    expect(inspection.tensors.at(-1)).toMatchObject({ name: 'rope_freqs.weight', hfName: null });
    expect(await rejection(Classifier.load({ modelDir: freqs, dora: DORA, seed: 1 }))).toMatch(
      /freqs\.gguf: tensor 'rope_freqs\.weight' \(per-frequency RoPE factors.*\) is not supported/,
    );
  });

  test('a file without the .gguf extension is recognised by its magic', async () => {
    const path = join(dir, 'model.bin');
    writeFileSync(path, file.bytes);
    expect((await loadLlamaConfig(path)).hidden_size).toBe(HIDDEN);
  });
});

// ---------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------

let mutationCounter = 0;
function mutated(edit: (bytes: Uint8Array, view: DataView) => Uint8Array | void): string {
  const bytes = new Uint8Array(file.bytes);
  const result = edit(bytes, new DataView(bytes.buffer)) ?? bytes;
  const path = join(dir, `m${mutationCounter++}.gguf`);
  writeFileSync(path, result);
  return path;
}

function setField(view: DataView, field: GgufField, value: bigint): void {
  if (field.size === 8) view.setBigUint64(field.at, value, true);
  else view.setUint32(field.at, Number(value & 0xffffffffn), true);
}

function field(kind: GgufField['kind'], what: string): GgufField {
  const found = file.fields.find((f) => f.kind === kind && f.what === what);
  if (!found) throw new Error(`no ${kind} field '${what}'`);
  return found;
}

interface Outcome {
  inspect: string | null; // the rejection message, or null when it resolved
  load: string | null;
}

async function outcome(path: string): Promise<Outcome> {
  const settle = async (promise: Promise<unknown>): Promise<string | null> => {
    try {
      const value = await promise;
      if (value instanceof Classifier) value.dispose();
      return null;
    } catch (error) {
      expectError(error);
      const message = (error as Error).message;
      // Every rejection names the file it is about.
      expect(message).toContain(path);
      return message;
    }
  };
  return {
    inspect: await settle(inspectGguf(path)),
    load: await settle(Classifier.load({ modelDir: path, dora: DORA, seed: 2 })),
  };
}

async function expectRejected(path: string, what: string, pattern?: RegExp): Promise<void> {
  const result = await outcome(path);
  if (result.inspect === null || result.load === null) {
    throw new Error(
      `${what}: expected both inspectGguf and load to reject, got ${JSON.stringify(result)}`,
    );
  }
  if (pattern) expect(result.inspect).toMatch(pattern);
}

describe('corrupted GGUF files reject with an Error naming the file', () => {
  test('bad magic and unsupported versions', async () => {
    const magic = field('magic', 'magic');
    const version = field('version', 'version');
    await expectRejected(
      mutated((b) => b.set([0x47, 0x47, 0x55, 0x47], magic.at)),
      'magic',
      /not a GGUF file \(the first 4 bytes are 47 47 55 47, expected "GGUF"\)/,
    );
    const cases: [number, RegExp][] = [
      [0, /unsupported GGUF version 0 \(supported: 2, 3\)/],
      [1, /GGUF version 1 is not supported/],
      [4, /unsupported GGUF version 4/],
      [0x03000000, /big-endian GGUF file/],
      [0xffffffff, /unsupported GGUF version 4294967295/],
    ];
    for (const [value, pattern] of cases) {
      await expectRejected(
        mutated((_, v) => setField(v, version, BigInt(value))),
        `version ${value}`,
        pattern,
      );
    }
    // Version 2 has the same layout: it reads.
    const v2 = await outcome(mutated((_, v) => setField(v, version, 2n)));
    expect(v2).toEqual({ inspect: null, load: null });
  });

  test('truncation at every structural point', async () => {
    const cuts = new Set<number>([
      0,
      1,
      file.dataOffset - 1,
      file.dataOffset,
      file.bytes.length - 1,
    ]);
    for (const f of file.fields) {
      cuts.add(f.at);
      cuts.add(f.at + Math.floor(f.size / 2));
      cuts.add(f.at + f.size); // cut right after the field
    }
    for (const start of Object.values(file.tensorStarts)) cuts.add(start + 1);
    let count = 0;
    for (const cut of [...cuts].filter((c) => c < file.bytes.length).sort((a, b) => a - b)) {
      await expectRejected(
        mutated((b) => b.slice(0, cut)),
        `truncated at ${cut}`,
        /truncated|beyond the end|runs past the end|can hold/,
      );
      count++;
    }
    console.log(`gguf mutations: ${count} truncations rejected`);
    expect(count).toBeGreaterThan(150);
  });

  test('huge and off-by-one lengths and counts, unknown type codes, bad offsets', async () => {
    const huge = [2n ** 64n - 1n, 2n ** 63n, 2n ** 32n + 1n, BigInt(file.bytes.length)];
    let count = 0;
    for (const f of file.fields) {
      const values: bigint[] = [];
      const current =
        f.size === 8
          ? new DataView(file.bytes.buffer).getBigUint64(f.at, true)
          : BigInt(new DataView(file.bytes.buffer).getUint32(f.at, true));
      switch (f.kind) {
        case 'tensor-count':
        case 'kv-count':
          values.push(...huge, current + 1n);
          break;
        case 'key-length':
        case 'string-length':
        case 'name-length':
        case 'array-count':
          values.push(...huge);
          break;
        case 'value-type':
        case 'array-type':
          values.push(13n, 99n, 0xffffffffn);
          break;
        case 'n-dims':
          values.push(5n, 0xffffffffn);
          break;
        case 'dim':
          values.push(2n ** 63n, 2n ** 62n, 2n ** 40n);
          break;
        case 'tensor-type':
          values.push(4n, 5n, 31n, 99n, 0xffffffffn); // 4, 5 and 31 are retired type ids
          break;
        case 'offset':
          values.push(current + 1n, current + 2n ** 40n, 2n ** 64n - 32n);
          break;
        default:
          break;
      }
      for (const value of values) {
        await expectRejected(
          mutated((_, v) => setField(v, f, value)),
          `${f.what} = ${value}`,
        );
        count++;
      }
    }
    // Two tensors at the same offset overlap.
    const up = field('offset', 'offset of blk.0.ffn_up.weight');
    const gate = field('offset', 'offset of blk.0.ffn_gate.weight');
    const gateOffset = new DataView(file.bytes.buffer).getBigUint64(gate.at, true);
    await expectRejected(
      mutated((_, v) => setField(v, up, gateOffset)),
      'overlap',
      /tensors 'blk\.0\.ffn_gate\.weight' and 'blk\.0\.ffn_up\.weight' overlap/,
    );
    console.log(`gguf mutations: ${count + 1} corrupt lengths, counts, codes and offsets rejected`);
    expect(count).toBeGreaterThan(150);
  });

  test('metadata that contradicts the tensors, or the format', async () => {
    const value = (what: string) => field('value', what);
    const cases: [string, (v: DataView, b: Uint8Array) => void, RegExp, boolean][] = [
      [
        'alignment 0',
        (v) => v.setUint32(value('general.alignment').at, 0, true),
        /general\.alignment must be a power of two/,
        true,
      ],
      [
        'alignment 48',
        (v) => v.setUint32(value('general.alignment').at, 48, true),
        /general\.alignment must be a power of two stored as an unsigned integer, got 48/,
        true,
      ],
      [
        'embedding_length 33',
        (v) => v.setUint32(value('llama.embedding_length').at, 33, true),
        /tensor 'token_embd\.weight' has shape \[40, 32\], the llama\.\* metadata says \[40, 33\]/,
        false,
      ],
      [
        'block_count 2',
        (v) => v.setUint32(value('llama.block_count').at, 2, true),
        /tensor 'blk\.1\.attn_norm\.weight' \(model\.layers\.1\.input_layernorm\.weight\) is missing/,
        false,
      ],
      [
        'head_count_kv 3',
        (v) => v.setUint32(value('llama.attention.head_count_kv').at, 3, true),
        /llama\.attention\.head_count_kv \(3\) must divide llama\.attention\.head_count \(4\)/,
        false,
      ],
      [
        'architecture',
        (_, b) =>
          b.set(Buffer.from('qwen2'), field('string-length', 'general.architecture').at + 8),
        /general\.architecture is 'qwen2'; only llama models are supported/,
        false,
      ],
      [
        'a bool of 2',
        (v) => v.setUint8(value('tokenizer.ggml.add_bos_token').at, 2),
        /is a bool stored as 2/,
        true,
      ],
      [
        // IQ4_NL: a real ggml type (32-element blocks of 18 bytes) that mentallam cannot decode.
        'unsupported type',
        (v) => v.setUint32(field('tensor-type', 'type of blk.0.ffn_gate.weight').at, 20, true),
        /tensor 'blk\.0\.ffn_gate\.weight' has type IQ4_NL, which mentallam cannot dequantize \(supported: F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, BF16\)/,
        false,
      ],
      [
        'a row that is not whole blocks',
        (v) => v.setUint32(field('tensor-type', 'type of blk.0.attn_q.weight').at, 12, true),
        /tensor 'blk\.0\.attn_q\.weight': its rows of 32 elements are not whole Q4_K blocks of 256/,
        true,
      ],
    ];
    for (const [what, edit, pattern, inspectRejects] of cases) {
      const result = await outcome(mutated((b, v) => edit(v, b)));
      expect({ what, load: result.load }).toEqual({ what, load: expect.stringMatching(pattern) });
      if (inspectRejects) expect(result.inspect).toMatch(pattern);
      else expect({ what, inspect: result.inspect }).toEqual({ what, inspect: null });
    }
    // A pad id outside the vocabulary is the model's complaint, not the file's.
    const pad = mutated((_, v) => {
      v.setUint32(value('tokenizer.ggml.padding_token_id').at, 1000, true);
    });
    expect(await rejection(Classifier.load({ modelDir: pad, dora: DORA, seed: 2 }))).toMatch(
      /pad token id 1000 is outside the vocabulary \[0, 40\)/,
    );
  });

  test('random bytes anywhere in the header: an Error or a model, never a crash', async () => {
    const next = random(2024);
    let rejected = 0;
    const runs = 300;
    for (let i = 0; i < runs; i++) {
      const path = mutated((b) => {
        const edits = 1 + Math.floor(next() * 4);
        for (let e = 0; e < edits; e++) {
          b[Math.floor(next() * file.dataOffset)] = Math.floor(next() * 256);
        }
      });
      const result = await outcome(path);
      if (result.inspect !== null || result.load !== null) rejected++;
    }
    console.log(`gguf mutations: ${rejected} of ${runs} random header corruptions rejected`);
    // Most bytes of this header are structure or names that the model needs, so most
    // corruptions must be caught; the rest (a changed score, a token's text) still load.
    expect(rejected).toBeGreaterThan(runs / 2);
  });
});
