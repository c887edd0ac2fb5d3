// The only place that loads the native addon; everything else goes through the wrappers.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { BindingModule } from './addonTypes.js';

// src/native/loadAddon.ts and dist/native/loadAddon.js both sit two levels below the package root.
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

let binding: BindingModule | undefined;

/**
 * Loads the addon once; a clear error when it has not been built. MENTALLAM_ADDON names another
 * build of it (a CUDA build in its own folder, or code compiled outside dist/, as the GPU tests
 * are).
 */
export function addon(): BindingModule {
  if (binding) return binding;
  const override = process.env.MENTALLAM_ADDON;
  const path = override
    ? resolve(override)
    : join(packageRoot, 'build', 'Release', 'mentallam.node');
  if (!existsSync(path)) {
    throw new Error(
      override
        ? `MENTALLAM_ADDON=${override}: no such file`
        : `the native addon is not built (${path} is missing): run npm run build:native`,
    );
  }
  const require = createRequire(import.meta.url);
  binding = require(path) as BindingModule;
  return binding;
}
