/**
 * A minimal PNG reader for test assertions on screenshots (8-bit greyscale/RGB/RGBA, not
 * interlaced: what Chromium writes). Enough to tell a rendered page from a blank one.
 */
import { inflateSync } from 'node:zlib';

export class PNG {
  private constructor(
    readonly width: number,
    readonly height: number,
    /** Bytes per pixel. */
    readonly channels: number,
    /** Unfiltered rows, width * channels bytes each. */
    readonly pixels: Uint8Array,
  ) {}

  static decode(bytes: Uint8Array): PNG {
    const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buffer.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
    let offset = 8;
    let width = 0;
    let height = 0;
    let channels = 0;
    const data: Buffer[] = [];
    while (offset < buffer.length) {
      const length = buffer.readUInt32BE(offset);
      const type = buffer.toString('latin1', offset + 4, offset + 8);
      const body = buffer.subarray(offset + 8, offset + 8 + length);
      if (type === 'IHDR') {
        width = body.readUInt32BE(0);
        height = body.readUInt32BE(4);
        const bitDepth = body[8];
        const colourType = body[9];
        const interlace = body[12];
        const byType: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };
        channels = byType[colourType ?? -1] ?? 0;
        if (bitDepth !== 8 || channels === 0 || interlace !== 0)
          throw new Error(`unsupported PNG (depth ${bitDepth}, colour type ${colourType})`);
      } else if (type === 'IDAT') data.push(body);
      else if (type === 'IEND') break;
      offset += 12 + length;
    }
    const raw = inflateSync(Buffer.concat(data));
    const stride = width * channels;
    const pixels = new Uint8Array(height * stride);
    for (let y = 0; y < height; y++) {
      const filter = raw[y * (stride + 1)]!;
      const src = y * (stride + 1) + 1;
      const out = y * stride;
      for (let x = 0; x < stride; x++) {
        const value = raw[src + x]!;
        const left = x >= channels ? pixels[out + x - channels]! : 0;
        const up = y > 0 ? pixels[out - stride + x]! : 0;
        const upLeft = y > 0 && x >= channels ? pixels[out - stride + x - channels]! : 0;
        let predictor = 0;
        if (filter === 1) predictor = left;
        else if (filter === 2) predictor = up;
        else if (filter === 3) predictor = (left + up) >> 1;
        else if (filter === 4) {
          const p = left + up - upLeft;
          const pa = Math.abs(p - left);
          const pb = Math.abs(p - up);
          const pc = Math.abs(p - upLeft);
          predictor = pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
        }
        pixels[out + x] = (value + predictor) & 0xff;
      }
    }
    return new PNG(width, height, channels, pixels);
  }

  /** Share of pixels that are not (near) white, and the number of distinct colours. */
  inkStats(): { nonWhiteFraction: number; distinctColours: number } {
    let nonWhite = 0;
    const colours = new Set<number>();
    const n = this.width * this.height;
    for (let i = 0; i < n; i++) {
      const base = i * this.channels;
      const r = this.pixels[base]!;
      const g = this.channels >= 3 ? this.pixels[base + 1]! : r;
      const b = this.channels >= 3 ? this.pixels[base + 2]! : r;
      if (r < 240 || g < 240 || b < 240) nonWhite++;
      colours.add((r << 16) | (g << 8) | b);
    }
    return { nonWhiteFraction: nonWhite / n, distinctColours: colours.size };
  }
}
