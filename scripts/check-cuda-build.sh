#!/usr/bin/env bash
# Compiles and links the addon against the CUDA build of the pinned torch on a machine without a
# GPU: the check that the CUDA code paths (native/cuda_memory.cc, addon_cuda.cc, the CUDA RNG in
# checkpointing.cc, torch_cuda/c10_cuda linked with --no-as-needed) build. It does not run them.
#
#   scripts/check-cuda-build.sh [--wheel FILE | --torch-root DIR] [--cuda-headers auto|pip]
#                               [--build-dir DIR] [--jobs N]
#
# 1. The wheel: --wheel, else torch-<pin>-cp<venv python>-*.whl in the cache
#    (${MENTALLAM_CUDA_TORCH_CACHE:-~/.cache/mentallam/cuda-torch}), else `pip download` of PyPI's
#    torch===<pin> (the CUDA build; about 500 MB, once). Never on CI (CI=true): too large.
# 2. Its include/, lib/ and share/ are unpacked into the cache once (--torch-root skips this).
# 3. The CUDA runtime headers: a toolkit's (CUDA_HOME, /usr/local/cuda) with --cuda-headers auto;
#    with pip (or when no toolkit is found) the nvidia-cuda-runtime and nvidia-cuda-crt wheels that
#    torch's cuda-toolkit dependency names are downloaded (2 MB) and unpacked beside the torch folder,
#    as a pip install lays them out.
# 4. scripts/cmake-build-addon.sh builds into --build-dir (default build-cuda-check/), so build/
#    and the CPU addon are untouched, with MENTALLAM_CUDA=ON.
# 5. The report: the NEEDED entries (libtorch_cuda.so, libc10_cuda.so), the c10::cuda symbols the
#    addon imports, ldd, and whether node can load it here (expected to fail without the CUDA
#    runtime libraries; compiling and linking is the check).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${MENTALLAM_CUDA_TORCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mentallam/cuda-torch}"
wheel="" torch_root="" headers="auto" build="$root/build-cuda-check" jobs="${MENTALLAM_BUILD_JOBS:-2}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --wheel) wheel="$2"; shift 2 ;;
    --torch-root) torch_root="$2"; shift 2 ;;
    --cuda-headers) headers="$2"; shift 2 ;;
    --build-dir) build="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) echo "check-cuda-build: unknown argument $1" >&2; exit 2 ;;
  esac
done
say() { echo "[check-cuda-build $(printf '%6ds' $((SECONDS)))] $*"; }
fail() { echo "check-cuda-build: FAILED: $*" >&2; exit 1; }
python="$root/.venv/bin/python"
[[ -x "$python" ]] || python="$(command -v python3)"
pin="$(sed -n 's/^torch==\([^ ;#]*\).*/\1/p' "$root/requirements/runtime.txt")"
[[ -n "$pin" ]] || fail "requirements/runtime.txt has no torch==<version> line"
platform=(--only-binary=:all: --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64)

if [[ -z "$torch_root" ]]; then
  if [[ -z "$wheel" ]]; then
    tag="cp$("$python" -c 'import sys; print("%d%d" % sys.version_info[:2])')"
    wheel="$(ls "$cache"/torch-"$pin"-"$tag"-"$tag"-*x86_64.whl 2>/dev/null | head -1 || true)"
    if [[ -z "$wheel" ]]; then
      [[ "${CI:-}" != "true" ]] ||
        fail "no CUDA torch wheel in $cache, and CI does not download one (about 500 MB)"
      say "downloading PyPI's torch===$pin (the CUDA build, about 500 MB) into $cache"
      mkdir -p "$cache"
      # find-links may hold a +cpu wheel of the same version: === matches the plain version only.
      PIP_FIND_LINKS="" "$python" -m pip download --no-deps "${platform[@]}" -d "$cache" "torch===$pin"
      wheel="$(ls "$cache"/torch-"$pin"-"$tag"-"$tag"-*x86_64.whl | head -1)"
    fi
  fi
  [[ -f "$wheel" ]] || fail "no such wheel: $wheel"
  site="$cache/$(basename "$wheel" .whl)"
  torch_root="$site/torch"
  if [[ ! -f "$site/.unpacked" ]]; then
    say "unpacking include/, lib/, share/ of $(basename "$wheel") into $site"
    rm -rf "$site" && mkdir -p "$site"
    unzip -q "$wheel" 'torch/include/*' 'torch/lib/*' 'torch/share/*' 'torch/version.py' -d "$site"
    touch "$site/.unpacked"
  fi
  metadata() { unzip -p "$wheel" '*.dist-info/METADATA'; }
else
  site="$(cd "$torch_root/.." && pwd)"
  metadata() { :; }
fi
[[ -f "$torch_root/lib/libtorch_cuda.so" ]] || fail "$torch_root/lib has no libtorch_cuda.so: not a CUDA build"
say "libtorch: $(sed -n "s/^__version__ = '\(.*\)'/\1/p" "$torch_root/version.py"), CUDA $(sed -n "s/^cuda: .* = '\(.*\)'/\1/p" "$torch_root/version.py"), at $torch_root"

cuda_include=""
toolkit=""
for dir in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do
  if [[ -n "$dir" && -f "$dir/include/cuda_runtime_api.h" && -f "$dir/include/crt/host_defines.h" ]]; then
    toolkit="$dir/include"; break
  fi
done
if [[ "$headers" == "pip" || -z "$toolkit" ]]; then
  # The versions torch itself pins, through cuda-toolkit[cudart]==X (its METADATA).
  kit="$(metadata | sed -n 's/^Requires-Dist: cuda-toolkit\[[^]]*\]==\([0-9.]*\).*/\1/p' | head -1)"
  [[ -n "$kit" ]] || fail "no toolkit headers found and no cuda-toolkit pin in the wheel's METADATA to fetch them with"
  if [[ ! -f "$site/nvidia/.unpacked-$kit" ]]; then
    say "fetching the CUDA runtime headers of cuda-toolkit[cudart,crt]==$kit (pip wheels, about 2 MB)"
    tmp="$(mktemp -d)"
    PIP_FIND_LINKS="" "$python" -m pip download "${platform[@]}" --python-version 3.11 -d "$tmp" \
      "cuda-toolkit[cudart,crt]==$kit" >/dev/null
    for w in "$tmp"/nvidia_cuda_runtime-*.whl "$tmp"/nvidia_cuda_crt-*.whl; do
      unzip -q -o "$w" 'nvidia/*' -d "$site"
    done
    rm -rf "$tmp"
    touch "$site/nvidia/.unpacked-$kit"
  fi
  cuda_include="$(ls -d "$site"/nvidia/cu*/include | head -1)"
  say "CUDA runtime headers: $cuda_include (pip wheels)"
else
  cuda_include="$toolkit"
  say "CUDA runtime headers: $toolkit (toolkit)"
fi

say "building into $build (build/ is not touched), $jobs jobs"
started=$SECONDS
"$root/scripts/cmake-build-addon.sh" --torch "$torch_root" --build-dir "$build" --cuda ON \
  --cuda-include "$cuda_include" --jobs "$jobs"
addon="$build/Release/mentallam.node"
say "compiled and linked in $((SECONDS - started)) s: $addon ($(du -h "$addon" | cut -f1))"

needed="$(readelf -d "$addon" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
say "NEEDED: $needed"
for lib in libtorch_cuda.so libc10_cuda.so; do
  [[ " $needed " == *" $lib "* ]] || fail "$lib is not among the addon's NEEDED libraries"
done
cuda_symbols="$(nm -D -C --undefined-only "$addon" | grep -c 'c10::cuda::' || true)"
say "c10::cuda symbols the addon imports: $cuda_symbols"
nm -D -C --undefined-only "$addon" | grep 'c10::cuda::' | sed 's/^ *U /    /' | head -8
[[ "$cuda_symbols" -gt 0 ]] || fail "the addon imports no c10::cuda symbol: the CUDA code was not compiled"
say "ldd (torch libraries):"
ldd "$addon" | grep -E 'torch|c10' | sed 's/^/    /'
missing="$(ldd "$addon" | grep -c 'not found' || true)"
say "ldd: $missing libraries not found here (the CUDA runtime libraries come with a GPU machine's driver and pip packages)"
if load="$(node -e "require(process.argv[1]); console.log('loaded')" "$addon" 2>&1)"; then
  say "node loads it: $load"
else
  say "node cannot load it here (expected without the CUDA runtime): $(echo "$load" | grep -m1 -o 'lib[^ :]*: cannot open[^)]*' || echo "$load" | head -1)"
fi
say "OK: the addon compiles and links against $(basename "$torch_root") CUDA in $((SECONDS - started)) s"
