// The only place that loads the native addon; everything else goes through the wrappers.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { BindingModule } from './addonTypes.js';

// src/native/loadAddon.ts and dist/native/loadAddon.js both sit two levels below the package root.
const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

let binding: BindingModule | undefined;

/** Loads the addon once; a clear error when it has not been built. */
export function addon(): BindingModule {
  if (binding) return binding;
  const path = join(packageRoot, 'build', 'Release', 'mentallam.node');
  if (!existsSync(path)) {
    throw new Error(`the native addon is not built (${path} is missing): run npm run build:native`);
  }
  const require = createRequire(import.meta.url);
  binding = require(path) as BindingModule;
  return binding;
}
