/**
 * A typed JSON file format: a TypeBox schema is both the TypeScript type and the JSON Schema that
 * ajv checks on write and on read, so what training writes is exactly what aggregation, inference
 * and a resume read back. Transforms map what JSON cannot hold (NaN is written as null, as
 * Python's json and every other reader of these files expect) to and from the in-memory value.
 */
import { Type, type StaticDecode, type TSchema } from '@sinclair/typebox';
import { HasTransform, TransformDecode, TransformEncode } from '@sinclair/typebox/value';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

/** A run file that is missing, not JSON, or not in the expected shape; names the file. */
export class RunFileError extends Error {
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
    this.name = 'RunFileError';
  }
}

// allErrors: one message lists every problem; strict: a typo in a schema fails at start-up.
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });

/** A number that may be NaN (or ±Infinity): JSON null on disk, NaN in memory. */
export const Metric = Type.Transform(Type.Union([Type.Number(), Type.Null()]))
  .Decode((value) => value ?? Number.NaN)
  .Encode((value) => (Number.isFinite(value) ? value : null));

/** Metric name -> value (NaN allowed), e.g. metrics.json's `test`. */
export const MetricRecord = Type.Record(Type.String(), Metric);

export const Nullable = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);

/** A count, index or step: an integer >= 0. */
export const Count = Type.Integer({ minimum: 0 });

/** A probability or a threshold: a number in [0, 1]. */
export const Unit = Type.Number({ minimum: 0, maximum: 1 });

function describe(errors: readonly ErrorObject[] | null | undefined): string {
  // A union reports one error per branch plus an anyOf error at the same place: merge them.
  const byPlace = new Map<string, string[]>();
  const unions = new Set<string>();
  for (const error of errors ?? []) {
    const place = error.instancePath === '' ? '(top level)' : error.instancePath.slice(1);
    if (error.keyword === 'anyOf') {
      unions.add(place);
      continue;
    }
    const extra =
      error.keyword === 'additionalProperties'
        ? ` (${String((error.params as { additionalProperty?: unknown }).additionalProperty)})`
        : '';
    const messages = byPlace.get(place) ?? [];
    messages.push(`${error.message ?? error.keyword}${extra}`);
    byPlace.set(place, messages);
  }
  const lines = [...byPlace].map(
    ([place, messages]) =>
      `${place.replace(/\//g, '.')} ${messages.join(unions.has(place) ? ' or ' : ', ')}`,
  );
  const more = lines.length > 5 ? `; and ${lines.length - 5} more` : '';
  return `${lines.slice(0, 5).join('; ')}${more}`;
}

/** Encodes and decodes one file format; every error names the file and the offending key. */
export class JsonCodec<S extends TSchema> {
  private compiled: ValidateFunction | undefined;

  constructor(
    readonly schema: S,
    /** What the file is, for messages: "a fold's metrics.json". */
    readonly what: string,
  ) {}

  /** Compiled on first use, so a command pays only for the formats it touches. */
  private get validate(): ValidateFunction {
    this.compiled ??= ajv.compile(this.schema);
    return this.compiled;
  }

  /** JSON text (2-space indent, final newline) of a value, checked as a reader will see it. */
  encode(value: StaticDecode<S>, path: string): string {
    const encoded = HasTransform(this.schema, []) ? TransformEncode(this.schema, [], value) : value;
    const text = JSON.stringify(encoded, null, 2);
    if (text === undefined) throw new RunFileError(path, `${this.what} is not JSON-serializable`);
    // Checked after the round trip: what is validated is exactly what the file will hold.
    this.check(JSON.parse(text), path, 'refusing to write');
    return `${text}\n`;
  }

  decode(text: string, path: string): StaticDecode<S> {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new RunFileError(path, `not valid JSON (${(error as Error).message})`, {
        cause: error,
      });
    }
    return this.parse(value, path);
  }

  /** Checks an already parsed value (e.g. a file downloaded and parsed elsewhere). */
  parse(value: unknown, path: string): StaticDecode<S> {
    this.check(value, path, 'not');
    return (
      HasTransform(this.schema, []) ? TransformDecode(this.schema, [], value) : value
    ) as StaticDecode<S>;
  }

  private check(value: unknown, path: string, verb: string): void {
    if (!this.validate(value)) {
      throw new RunFileError(path, `${verb} ${this.what}: ${describe(this.validate.errors)}`);
    }
  }
}
