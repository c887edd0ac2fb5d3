#!/usr/bin/env node
// Checks (or with --fix, applies) clang-format on native/. Uses the clang-format pinned in
// requirements/tools.txt (.venv/bin/clang-format) so every machine formats the same way.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pinned = join(root, '.venv', 'bin', 'clang-format');
const binary = existsSync(pinned) ? pinned : 'clang-format';
const files = readdirSync(join(root, 'native'))
  .filter((name) => /\.(cc|h)$/.test(name))
  .map((name) => join('native', name));
const fix = process.argv.includes('--fix');
const args = fix ? ['-i', ...files] : ['--dry-run', '--Werror', ...files];
const result = spawnSync(binary, args, { cwd: root, stdio: 'inherit' });
if (result.error) {
  console.error(
    `clang-format could not run (${result.error.message}); run npm install to set up .venv`,
  );
  process.exit(1);
}
if (result.status !== 0) {
  console.error('clang-format: native/ is not formatted; run npm run format');
  process.exit(result.status ?? 1);
}
console.log(`clang-format: ${files.length} native files ${fix ? 'formatted' : 'clean'}`);
