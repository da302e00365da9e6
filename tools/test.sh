#!/usr/bin/env bash
# The test command: installs what is missing, configures a Release build (with CUDA when nvcc
# is found), builds everything and runs the whole test suite. Exits non-zero if any test fails.
# Usage: tools/test.sh [build-folder]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
jobs=$(nproc)
tools/install_deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs"
