// GGUF parity, tensors and metadata: gguf-py writes a file with tensors of every type mentallam
// decodes (quantized by gguf.quants.quantize, or crafted blocks for the K-quants) and metadata of
// every value type; the addon must read every value exactly as gguf.quants.dequantize does, bit
// for bit, and every metadata value as written.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { inspectGguf, readGgufTensor } from '../../../src/native.js';
import { runOracle } from './helpers.js';

interface Expected {
  tensors: Record<string, { type: string; shape: number[]; file?: string }>;
}

const DECODED = [
  'F32',
  'F16',
  'BF16',
  'Q8_0',
  'Q4_0',
  'Q4_1',
  'Q5_0',
  'Q5_1',
  'Q4_K',
  'Q5_K',
  'Q6_K',
];

let work: string;
let file: string;
let expected: Expected;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'mentallam-gguf-types-'));
  file = join(work, 'types.gguf');
  expected = await runOracle<Expected>('gguf_oracle.py', [
    'make-tensors',
    '--out',
    file,
    '--dump',
    join(work, 'expected'),
    '--seed',
    '1',
  ]);
}, 120_000);
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function readFloat32(path: string): Promise<Float32Array> {
  const bytes = await readFile(path);
  // A copy, so the view is aligned whatever the Buffer's offset in its pool.
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

test.each(DECODED)('%s tensors equal gguf.quants.dequantize bit for bit', async (type) => {
  const names = Object.keys(expected.tensors).filter((name) => name.startsWith(`${type}.`));
  expect(names.length).toBeGreaterThanOrEqual(2); // a 2-D and a 3-D tensor at least
  let values = 0;
  let maxDiff = 0;
  for (const name of names) {
    const want = expected.tensors[name]!;
    const ours = await readGgufTensor(file, name);
    expect(ours.type).toBe(type);
    expect(ours.shape).toEqual(want.shape);
    const theirs = await readFloat32(want.file!);
    expect(ours.data.length).toBe(theirs.length);
    // Compare the bits, so that -0, infinities and NaN count too.
    const a = new Uint32Array(ours.data.buffer, ours.data.byteOffset, ours.data.length);
    const b = new Uint32Array(theirs.buffer);
    let mismatches = 0;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) mismatches++;
      const diff = Math.abs(ours.data[i]! - theirs[i]!);
      if (Number.isFinite(diff)) maxDiff = Math.max(maxDiff, diff);
    }
    expect({ name, mismatches }).toEqual({ name, mismatches: 0 });
    values += a.length;
  }
  console.log(`gguf ${type}: ${values} values in ${names.length} tensors, max |diff| ${maxDiff}`);
  expect(maxDiff).toBe(0);
});

test('a type mentallam does not decode is rejected naming the tensor and the type', async () => {
  expect(expected.tensors['Q2_K.2d']!.type).toBe('Q2_K');
  await expect(readGgufTensor(file, 'Q2_K.2d')).rejects.toThrow(
    /types\.gguf: tensor 'Q2_K\.2d' has type Q2_K, which mentallam cannot dequantize \(supported: F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K, BF16\)/,
  );
});

test('metadata of every value type reads as gguf-py wrote it', async () => {
  const inspection = await inspectGguf(file);
  expect(inspection.version).toBe(3);
  expect(inspection.alignment).toBe(32);
  const meta = inspection.metadata;
  expect(meta['general.architecture']).toBe('llama');
  expect(meta['test.u8']).toBe(200);
  expect(meta['test.i8']).toBe(-100);
  expect(meta['test.u16']).toBe(60000);
  expect(meta['test.i16']).toBe(-30000);
  expect(meta['test.u32']).toBe(4000000000);
  expect(meta['test.i32']).toBe(-2000000000);
  expect(meta['test.f32']).toBe(Math.fround(0.1));
  expect(meta['test.u64']).toBe(2n ** 60n + 1n); // beyond 2^53: a bigint
  expect(meta['test.i64']).toBe(-(2 ** 40));
  expect(meta['test.f64']).toBe(0.1);
  expect(meta['test.bool']).toBe(true);
  expect(meta['test.string']).toBe('héllo wörld ✓');
  expect(meta['test.strings']).toEqual(['a', '', 'ünïcode', '<0x0A>']);
  expect(meta['test.floats']).toEqual(Float32Array.of(0.5, -1.25, 3));
  expect(meta['test.ints']).toEqual(Int32Array.of(1, -2, 3));
  expect(meta['test.u64s']).toEqual(BigUint64Array.of(1n, 2n ** 63n));
  expect(meta['test.bools']).toEqual([true, false, true]);
  expect(meta['test.nested']).toEqual([Int32Array.of(1, 2), Int32Array.of(3)]);
  // Tensor infos: names, types and shapes (torch order) as gguf-py reports them.
  for (const tensor of inspection.tensors) {
    const want = expected.tensors[tensor.name]!;
    expect([tensor.name, tensor.type, tensor.shape]).toEqual([tensor.name, want.type, want.shape]);
    expect(tensor.hfName).toBeNull();
  }
  expect(inspection.tensors).toHaveLength(Object.keys(expected.tensors).length);
});
