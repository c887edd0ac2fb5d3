// A minimal GGUF writer for tests: it lays a file out as gguf-py does (v3, little-endian, tensor
// data aligned) and records where every structural field sits, so a test can truncate or corrupt
// the file at exactly those points.

/** Metadata value types, numbered as in the file. */
export const GGUF_TYPE = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
} as const;

export type GgufScalarType = Exclude<keyof typeof GGUF_TYPE, 'array'>;

export type GgufEntry =
  | { key: string; type: GgufScalarType; value: number | bigint | boolean | string }
  | { key: string; type: 'array'; elementType: GgufScalarType; value: unknown[] };

export interface GgufTensorSpec {
  name: string;
  /** ggml type id (0 F32, 1 F16, 8 Q8_0, ...). */
  type: number;
  /** ggml order: dims[0] is the row length. */
  dims: number[];
  data: Uint8Array;
}

/** A field of the file: a count, a length, a type code, an offset... */
export interface GgufField {
  at: number;
  size: number;
  kind:
    | 'magic'
    | 'version'
    | 'tensor-count'
    | 'kv-count'
    | 'key-length'
    | 'value-type'
    | 'string-length'
    | 'array-type'
    | 'array-count'
    | 'value'
    | 'name-length'
    | 'n-dims'
    | 'dim'
    | 'tensor-type'
    | 'offset';
  what: string;
}

export interface GgufFile {
  bytes: Uint8Array;
  fields: GgufField[];
  dataOffset: number;
  /** Absolute byte offset of each tensor's data, by name. */
  tensorStarts: Record<string, number>;
}

class Writer {
  readonly chunks: Buffer[] = [];
  readonly fields: GgufField[] = [];
  length = 0;

  push(buffer: Buffer, kind: GgufField['kind'] | null, what: string): void {
    if (kind) this.fields.push({ at: this.length, size: buffer.length, kind, what });
    this.chunks.push(buffer);
    this.length += buffer.length;
  }

  u32(value: number, kind: GgufField['kind'] | null, what: string): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    this.push(b, kind, what);
  }

  u64(value: number | bigint, kind: GgufField['kind'] | null, what: string): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(value));
    this.push(b, kind, what);
  }

  string(text: string, lengthKind: GgufField['kind'], what: string): void {
    const bytes = Buffer.from(text, 'utf8');
    this.u64(bytes.length, lengthKind, what);
    this.push(bytes, null, what);
  }

  scalar(type: GgufScalarType, value: unknown, what: string): void {
    const b = Buffer.alloc(type === 'string' ? 0 : scalarSize(type));
    switch (type) {
      case 'uint8':
        b.writeUInt8(value as number);
        break;
      case 'int8':
        b.writeInt8(value as number);
        break;
      case 'uint16':
        b.writeUInt16LE(value as number);
        break;
      case 'int16':
        b.writeInt16LE(value as number);
        break;
      case 'uint32':
        b.writeUInt32LE(value as number);
        break;
      case 'int32':
        b.writeInt32LE(value as number);
        break;
      case 'float32':
        b.writeFloatLE(value as number);
        break;
      case 'float64':
        b.writeDoubleLE(value as number);
        break;
      case 'uint64':
        b.writeBigUInt64LE(BigInt(value as number | bigint));
        break;
      case 'int64':
        b.writeBigInt64LE(BigInt(value as number | bigint));
        break;
      case 'bool':
        b.writeUInt8(value ? 1 : 0);
        break;
      case 'string':
        this.string(value as string, 'string-length', what);
        return;
    }
    this.push(b, 'value', what);
  }

  pad(alignment: number): void {
    const padding = (alignment - (this.length % alignment)) % alignment;
    if (padding) this.push(Buffer.alloc(padding), null, 'padding');
  }

  bytes(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.chunks));
  }
}

function scalarSize(type: GgufScalarType): number {
  return (
    { uint8: 1, int8: 1, bool: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4 }[
      type as 'uint8'
    ] ?? 8
  );
}

/** Writes a GGUF v3 file; `alignment` must match general.alignment when the metadata sets it. */
export function writeGguf(
  metadata: GgufEntry[],
  tensors: GgufTensorSpec[],
  alignment = 32,
): GgufFile {
  const w = new Writer();
  w.push(Buffer.from('GGUF'), 'magic', 'magic');
  w.u32(3, 'version', 'version');
  w.u64(tensors.length, 'tensor-count', 'tensor count');
  w.u64(metadata.length, 'kv-count', 'metadata count');
  for (const entry of metadata) {
    w.string(entry.key, 'key-length', `key ${entry.key}`);
    w.u32(GGUF_TYPE[entry.type], 'value-type', `type of ${entry.key}`);
    if (entry.type === 'array') {
      w.u32(GGUF_TYPE[entry.elementType], 'array-type', `element type of ${entry.key}`);
      w.u64(entry.value.length, 'array-count', `count of ${entry.key}`);
      entry.value.forEach((item, i) => w.scalar(entry.elementType, item, `${entry.key}[${i}]`));
    } else {
      w.scalar(entry.type, entry.value, entry.key);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const tensor of tensors) {
    w.string(tensor.name, 'name-length', `name of ${tensor.name}`);
    w.u32(tensor.dims.length, 'n-dims', `dimension count of ${tensor.name}`);
    tensor.dims.forEach((dim, i) => w.u64(dim, 'dim', `dimension ${i} of ${tensor.name}`));
    w.u32(tensor.type, 'tensor-type', `type of ${tensor.name}`);
    w.u64(offset, 'offset', `offset of ${tensor.name}`);
    offsets.push(offset);
    offset += Math.ceil(tensor.data.length / alignment) * alignment;
  }
  w.pad(alignment);
  const dataOffset = w.length;
  const tensorStarts: Record<string, number> = {};
  tensors.forEach((tensor, i) => {
    tensorStarts[tensor.name] = dataOffset + offsets[i]!;
    w.chunks.push(Buffer.from(tensor.data));
    w.length += tensor.data.length;
    // No padding after the last tensor: then every truncation of the file is an error.
    if (i < tensors.length - 1) w.pad(alignment);
  });
  return { bytes: w.bytes(), fields: w.fields, dataOffset, tensorStarts };
}
