/** Tags that make a run traceable: data set, code and runtime versions, device. */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Config } from '../config/index.js';
import type { Dataset } from '../data/index.js';
import { nativeInfo } from '../native.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

export function runTags(config: Config, dataset: Dataset, device: string): Record<string, string> {
  const runtime = nativeInfo();
  const tags: Record<string, string> = {
    'mentallam.dataset_hash': dataset.hash,
    'mentallam.dataset': config.data.name,
    'mentallam.version': packageVersion(),
    'mentallam.libtorch_version': runtime.torchVersion,
    'mentallam.node_version': process.version,
    'mentallam.device': device,
    'mentallam.model': config.model.name,
  };
  if (dataset.manifest.countOverrideReason) {
    tags['mentallam.count_override_reason'] = dataset.manifest.countOverrideReason;
  }
  return tags;
}
