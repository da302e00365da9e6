#!/usr/bin/env bash
# The main job: installs what is missing, builds in Release and trains ResNet-50 on
# Fashion-MNIST with the default recipe for this machine (see README). Extra arguments go to
# `resnet50 train`, e.g. tools/train.sh --epochs 3.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh train
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DCUDAGRAD_BUILD_TESTS=OFF -DCUDAGRAD_BUILD_BENCHMARKS=OFF
cmake --build build -j "$(nproc)" --target resnet50
exec build/examples/resnet50/resnet50 train "$@"
