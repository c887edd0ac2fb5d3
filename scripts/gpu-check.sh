#!/usr/bin/env bash
# The whole GPU check, on a bare GPU machine with no internet and no Node: the NVIDIA H200 that
# the device tool lends (docs/gpu.md has the exact `run` call), or any box with CUDA, nvcc, cmake,
# ninja, g++ and a python3 whose torch is a CUDA build, with transformers and peft.
#
#   scripts/gpu-check.sh [--only env,build,test,bench] [--budget SECONDS] [--out DIR]
#                        [--cpu-dry-run]
#
# What it needs from the checkout: .gpu-carry/ (node scripts/pack-gpu-carry.mjs, on a machine
# with npm): Node 20 (node.xz), the node_modules the build and the tests use, the compiled GPU
# tests, nlohmann/json's headers. Phases, each logged with its time:
#   env    nvidia-smi, nvcc, cmake, python3's torch / transformers / peft versions
#   build  the addon, by cmake + ninja (scripts/cmake-build-addon.sh) against python3's torch,
#          with MENTALLAM_CUDA=ON; if that fails and .gpu-carry/prebuilt was built for the same
#          torch version, that prebuilt addon is used instead (and the log says so)
#   test   scripts/test-gpu.mjs on the compiled tests, MENTALLAM_REQUIRE_GPU=1 (no GPU = failure)
#   bench  scripts/bench-native.mjs --device cuda: mentallam vs peft DoRA and LoRA, bf16, Llama-2-7B
#          and SmolLM2 shapes
# Results go to --out (default $OUT when set, else gpu-check-results/), flat, at most 8 files:
#   gpu-check.log (everything printed), env.txt, summary.json (each phase's status and seconds),
#   gpu-tests.json, gpu-results.jsonl (the tests' figures), gpu-bench.json.
# --budget: the seconds the whole script may take; each phase gets what is left (minus a margin),
# so that the summary is written before an outer timeout kills it. Exit status: 0 when every phase
# that ran passed.
# --cpu-dry-run checks this script on a machine without a GPU (python3 with a CPU torch is fine):
# the addon built for whatever torch python3 has, the GPU tests on the CPU
# (MENTALLAM_GPU_TEST_DEVICE=cpu), the shape bench on the CPU with a 1-layer model. Nothing it
# prints is a GPU result.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
only="env,build,test,bench"
budget=0
dry=0
out="${OUT:-$root/gpu-check-results}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --only) only="$2"; shift 2 ;;
    --budget) budget="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --cpu-dry-run) dry=1; shift ;;
    *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"
exec > >(tee -a "$out/gpu-check.log") 2>&1
carry="$root/.gpu-carry"
work="${TMPDIR:-/tmp}/mentallam-gpu-check"
mkdir -p "$work"
started=$SECONDS
declare -A status seconds
order=()

say() { echo "[gpu-check $(printf '%5ds' $((SECONDS - started)))] $*"; }
wanted() { [[ ",$only," == *",$1,"* ]]; }
# Seconds a phase may take: what is left of --budget less 20 s for the summary (none: 1 hour).
allowed() {
  if [[ "$budget" -le 0 ]]; then echo 3600; return; fi
  local left=$((budget - (SECONDS - started) - 20))
  echo $((left > 10 ? left : 10))
}
record() { status[$1]="$2"; seconds[$1]="$3"; order+=("$1"); say "phase $1: $2 ($3 s)"; }
summary() {
  {
    echo "{"
    echo "  \"commit\": \"$(cat "$carry/MANIFEST.json" 2>/dev/null | sed -n 's/.*"commit": "\(.*\)".*/\1/p')\","
    echo "  \"seconds\": $((SECONDS - started)),"
    echo "  \"phases\": {"
    local first=1
    for phase in "${order[@]}"; do
      [[ $first == 1 ]] || echo ","
      first=0
      printf '    "%s": {"status": "%s", "seconds": %s}' "$phase" "${status[$phase]}" "${seconds[$phase]}"
    done
    echo ""
    echo "  }"
    echo "}"
  } > "$out/summary.json"
  say "summary: $(tr -d '\n ' < "$out/summary.json")"
}
trap summary EXIT

node=""
cuda_mode=ON
if [[ $dry == 1 ]]; then
  cuda_mode=AUTO
  say "CPU DRY RUN (--cpu-dry-run): checks this script; nothing below is a GPU result"
fi

# --- env ---------------------------------------------------------------------------------------
if wanted env; then
  t=$SECONDS
  {
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(uname -srm), $(nproc) CPUs"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
    nvidia-smi 2>&1 | grep -m1 'CUDA Version' | sed 's/^/nvidia-smi: /'
    echo "nvcc: $(nvcc --version 2>&1 | grep -m1 release || echo missing)"
    echo "cmake: $(cmake --version 2>&1 | head -1)"
    echo "ninja: $(ninja --version 2>&1 || echo missing)"
    echo "g++: $(g++ --version 2>&1 | head -1)"
    echo "python3: $(command -v python3) $(python3 --version 2>&1)"
    python3 - <<'EOF' 2>&1
import importlib.metadata as md, torch
print(f"torch: {torch.__version__} (CUDA {torch.version.cuda}, available {torch.cuda.is_available()}, "
      f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no device'})")
for name in ("transformers", "peft", "safetensors", "accelerate"):
    try:
        print(f"{name}: {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name}: MISSING")
EOF
    echo "carry: $(tr -d '\n' < "$carry/MANIFEST.json" 2>/dev/null || echo 'MISSING: run node scripts/pack-gpu-carry.mjs')"
  } | tee "$out/env.txt"
  record env ok $((SECONDS - t))
fi

# --- node and the carried JavaScript -------------------------------------------------------------
# The carried Node when there is one (what the check is about), else a Node >= 20 on PATH.
setup_node() {
  if [[ ! -f "$carry/node.xz" ]]; then
    if command -v node >/dev/null && [[ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null)" -ge 20 ]]; then
      node="$(command -v node)"
    else
      say "no $carry/node.xz and no Node >= 20: run node scripts/pack-gpu-carry.mjs first"
      return 1
    fi
  else
    if [[ ! -x "$work/node" ]]; then
      if command -v xz >/dev/null; then
        xz -dc "$carry/node.xz" > "$work/node"
      else
        python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
          "$carry/node.xz" "$work/node"
      fi
      chmod +x "$work/node"
    fi
    node="$work/node"
  fi
  export PATH="$(dirname "$node"):$PATH"
  say "node $("$node" --version) at $node"
  if [[ -f "$carry/js.tar.gz" && ! -f "$root/node_modules/.gpu-carry" ]]; then
    tar xzf "$carry/js.tar.gz" -C "$root"
    touch "$root/node_modules/.gpu-carry"
    say "unpacked node_modules ($(ls "$root/node_modules" | tr '\n' ' ')), build/gpu-test, vendor/include"
  fi
}
if wanted build || wanted test || wanted bench; then
  if ! setup_node; then
    record node failed 0
    exit 1
  fi
fi

torch_root="$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null)"
torch_version="$(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null)"
addon="$root/build/Release/mentallam.node"

# --- build -------------------------------------------------------------------------------------
if wanted build; then
  t=$SECONDS
  say "building the addon against torch $torch_version at $torch_root (MENTALLAM_CUDA=$cuda_mode), $(nproc) jobs"
  if timeout "$(allowed)" "$root/scripts/cmake-build-addon.sh" --torch "$torch_root" \
    --build-dir "$root/build" --cuda "$cuda_mode" --json-include "$root/vendor/include" \
    --node-modules "$root/node_modules" --jobs "$(nproc)"; then
    record build ok $((SECONDS - t))
  else
    record build failed $((SECONDS - t))
    if [[ -f "$carry/prebuilt/mentallam.node.xz" && "$(cat "$carry/prebuilt/torch-version")" == "$torch_version" ]]; then
      say "USING THE PREBUILT ADDON of .gpu-carry/prebuilt (built elsewhere for torch $torch_version): the build above failed"
      mkdir -p "$root/build/Release"
      xz -dc "$carry/prebuilt/mentallam.node.xz" > "$addon" 2>/dev/null ||
        python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
          "$carry/prebuilt/mentallam.node.xz" "$addon"
      # Its RUNPATH names the build machine's torch; this one's comes first.
      export LD_LIBRARY_PATH="$torch_root/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      record prebuilt ok 0
    fi
  fi
fi

# The addon's own view of the machine, in a child process (a bad load must not end the script).
if [[ -f "$addon" ]] && (wanted test || wanted bench); then
  t=$SECONDS
  if info="$("$node" -e 'const a = require(process.argv[1]); const i = a.info(); delete i.cpuCache; console.log(JSON.stringify({ ...i, cuda: a.cuda ? a.cuda.memoryStats() : null }))' "$addon" 2>&1)"; then
    say "addon: $info"
    if [[ "$info" == *'"cudaAvailable":true'* || $dry == 1 ]]; then
      record addon ok $((SECONDS - t))
    else
      record addon no-cuda $((SECONDS - t))
    fi
  else
    say "addon does not load: $info"
    say "diagnose with: LD_DEBUG=libs node -e \"require('$addon')\" 2>&1 | grep -i 'not found'"
    record addon failed $((SECONDS - t))
  fi
fi

# --- test --------------------------------------------------------------------------------------
if wanted test; then
  t=$SECONDS
  say "GPU tests (node:test, compiled tests from .gpu-carry), oracles on python3"
  test_env=(MENTALLAM_REQUIRE_GPU=1)
  [[ $dry == 1 ]] && test_env=(MENTALLAM_GPU_TEST_DEVICE=cpu)
  if env "${test_env[@]}" MENTALLAM_ORACLE_PYTHON=python3 MENTALLAM_ADDON="$addon" \
    timeout "$(allowed)" "$node" "$root/scripts/test-gpu.mjs" --compiled "$root/build/gpu-test" \
    --json "$out/gpu-tests.json" --results "$out/gpu-results.jsonl"; then
    record test ok $((SECONDS - t))
  else
    record test failed $((SECONDS - t))
  fi
fi

# --- bench -------------------------------------------------------------------------------------
if wanted bench; then
  t=$SECONDS
  say "GPU bench: mentallam vs peft DoRA / LoRA, bf16, Llama-2-7B and SmolLM2 shapes"
  bench_args=(--device cuda)
  if [[ $dry == 1 ]]; then
    bench_args=(--device cpu --shape smollm2 --layers 1 --seq 32 --batch 2 --steps 1 --warmup 1)
  fi
  if MENTALLAM_BENCH_PYTHON=python3 MENTALLAM_ADDON="$addon" MENTALLAM_BENCH_DIR="$work" \
    timeout "$(allowed)" "$node" "$root/scripts/bench-native.mjs" "${bench_args[@]}" --out "$out/gpu-bench.json"; then
    record bench ok $((SECONDS - t))
  else
    record bench failed $((SECONDS - t))
  fi
fi

for phase in "${order[@]}"; do
  [[ "${status[$phase]}" == ok ]] || exit 1
done
exit 0
