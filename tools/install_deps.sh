#!/usr/bin/env bash
# Installs what building, testing and training with cudagrad need, from Debian's packages.
# Idempotent: it skips apt entirely when everything is already there. The CUDA toolkit and
# cuDNN come with the machine image (/usr/local/cuda); without them the CPU backend builds alone.
#
#   tools/install_deps.sh train   what building the library and training need: cmake, g++,
#                                  zlib1g-dev, libopenblas-dev, libstb-dev, dataset-fashion-mnist
#   tools/install_deps.sh          all of that, plus what the tests and benchmarks need: catch2,
#                                  libbenchmark-dev, python3-torch + python3-torchvision (the
#                                  ResNet-50 parity test runs torchvision beside our build)
set -euo pipefail
packages=(cmake g++ make zlib1g-dev libopenblas-dev libstb-dev dataset-fashion-mnist)
if [[ "${1:-all}" != "train" ]]; then
  packages+=(catch2 libbenchmark-dev python3-torch python3-torchvision python3-numpy)
fi
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if (( ${#missing[@]} )); then
  echo "install_deps: installing ${missing[*]}"
  if [[ $(id -u) -eq 0 ]]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
