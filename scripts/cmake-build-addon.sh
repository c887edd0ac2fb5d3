#!/usr/bin/env bash
# Builds the addon with cmake and ninja directly, without cmake-js: the same CMakeLists.txt and the
# same variables cmake-js passes for a Node-API addon (node-api-headers and node-addon-api on the
# include path; nothing to link on Linux). scripts/check-cuda-build.sh uses it for a separate CUDA
# build folder, and scripts/gpu-check.sh on a GPU machine that has no npm. `npm install` builds with
# cmake-js (scripts/setup.mjs) and does not use this script.
#
#   scripts/cmake-build-addon.sh --torch DIR --build-dir DIR [--json-include DIR]
#       [--node-modules DIR] [--cuda AUTO|ON|OFF] [--cuda-include DIR] [--jobs N]
#
# --torch: the folder holding libtorch's include/ and lib/ (a torch wheel's package folder).
# --json-include: a folder with nlohmann/json.hpp (default: .venv's nlohmann_json package).
# --node-modules: where node-api-headers and node-addon-api are (default: ./node_modules).
# --cuda-include: the CUDA runtime headers (default: CMakeLists.txt looks for them).
# The addon lands in <build-dir>/Release/mentallam.node.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
torch="" build="" json="" modules="$root/node_modules" cuda="AUTO" cuda_include="" jobs="${MENTALLAM_BUILD_JOBS:-$(nproc)}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --torch) torch="$2"; shift 2 ;;
    --build-dir) build="$2"; shift 2 ;;
    --json-include) json="$2"; shift 2 ;;
    --node-modules) modules="$2"; shift 2 ;;
    --cuda) cuda="$2"; shift 2 ;;
    --cuda-include) cuda_include="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) echo "cmake-build-addon: unknown argument $1" >&2; exit 2 ;;
  esac
done
fail() { echo "cmake-build-addon: $*" >&2; exit 1; }
[[ -n "$torch" && -d "$torch/include/torch" && -d "$torch/lib" ]] ||
  fail "--torch must name a libtorch folder with include/torch and lib/ (got '${torch}')"
[[ -n "$build" ]] || fail "--build-dir is required"
if [[ -z "$json" ]]; then
  for candidate in "$root"/.venv/lib/python3*/site-packages/nlohmann_json/include /usr/include /usr/local/include; do
    if [[ -f "$candidate/nlohmann/json.hpp" ]]; then json="$candidate"; break; fi
  done
fi
[[ -n "$json" && -f "$json/nlohmann/json.hpp" ]] ||
  fail "nlohmann/json.hpp not found: pass --json-include DIR"
headers="$modules/node-api-headers/include"
addon_api="$modules/node-addon-api"
[[ -f "$headers/node_api.h" ]] || fail "$headers/node_api.h is missing (npm package node-api-headers)"
[[ -f "$addon_api/napi.h" ]] || fail "$addon_api/napi.h is missing (npm package node-addon-api)"
command -v cmake >/dev/null || fail "cmake is not on PATH"
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi

mkdir -p "$build"
build="$(cd "$build" && pwd)"
# A cache from another libtorch or flavour would keep its find_library results.
rm -f "$build/CMakeCache.txt"
cmake -S "$root" -B "$build" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS=-DBUILDING_NODE_EXTENSION \
  "-DCMAKE_JS_INC=$headers;$addon_api" \
  -DCMAKE_JS_SRC= -DCMAKE_JS_LIB= \
  "-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$build/Release" \
  "-DTORCH_ROOT=$torch" \
  "-DNLOHMANN_JSON_INCLUDE=$json" \
  "-DMENTALLAM_CUDA=$cuda" \
  ${cuda_include:+"-DCUDA_INCLUDE_DIR=$cuda_include"}
cmake --build "$build" --parallel "$jobs"
[[ -f "$build/Release/mentallam.node" ]] || fail "the build finished without $build/Release/mentallam.node"
echo "cmake-build-addon: built $build/Release/mentallam.node"
