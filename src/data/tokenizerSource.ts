// Where a model's tokenizer comes from: a Hugging Face tokenizer.json, a SentencePiece
// tokenizer.model (Llama-2 checkpoints that ship no tokenizer.json), or the metadata of a GGUF file.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';

export type TokenizerSourceKind = 'tokenizer.json' | 'tokenizer.model' | 'gguf';

export interface TokenizerSource {
  kind: TokenizerSourceKind;
  /** The file the tokenizer is read from. */
  path: string;
}

/** A tokenizer that cannot be found or built; the message names the file and what was expected. */
export class TokenizerError extends Error {
  constructor(
    readonly path: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${path}: ${message}`, options);
    this.name = 'TokenizerError';
  }
}

/**
 * Picks the source for `modelPathOrDir`: a .gguf file itself; in a directory, tokenizer.json if
 * present, else tokenizer.model, else the directory's one .gguf file.
 */
export function findTokenizerSource(modelPathOrDir: string): TokenizerSource {
  if (!existsSync(modelPathOrDir)) {
    throw new TokenizerError(
      modelPathOrDir,
      'no such file or directory (a model directory or a .gguf file was expected)',
    );
  }
  if (!statSync(modelPathOrDir).isDirectory()) {
    if (extname(modelPathOrDir).toLowerCase() === '.gguf') {
      return { kind: 'gguf', path: modelPathOrDir };
    }
    throw new TokenizerError(
      modelPathOrDir,
      'not a model directory or a .gguf file (a directory with tokenizer.json or tokenizer.model, or a GGUF file, was expected)',
    );
  }
  for (const kind of ['tokenizer.json', 'tokenizer.model'] as const) {
    const path = join(modelPathOrDir, kind);
    if (existsSync(path)) return { kind, path };
  }
  const ggufs = readdirSync(modelPathOrDir)
    .filter((f) => extname(f).toLowerCase() === '.gguf')
    .sort();
  if (ggufs.length === 1) return { kind: 'gguf', path: join(modelPathOrDir, ggufs[0] as string) };
  if (ggufs.length > 1) {
    throw new TokenizerError(
      modelPathOrDir,
      `no tokenizer.json or tokenizer.model, and ${ggufs.length} GGUF files (${ggufs.join(', ')}): ` +
        'name the one to use (model path = the .gguf file)',
    );
  }
  throw new TokenizerError(
    modelPathOrDir,
    'no tokenizer.json, tokenizer.model or .gguf file here (expected a Hugging Face ' +
      'tokenizer.json, a SentencePiece tokenizer.model or one GGUF file)',
  );
}
