#!/usr/bin/python3
"""CPU training throughput: cudagrad's ResNet-50 against PyTorch's, same model, data and threads.

    /usr/bin/python3 benchmarks/train_cpu_vs_pytorch.py [--binary build/benchmarks/bench_train]
        [--batch 32] [--image-size 32] [--steps 10] [--warmup 2] [--threads 2] [--rounds 1] [--json FILE]

The CPU form of benchmarks/train_vs_pytorch.py (which also compares on a GPU): the same flags,
with --device cpu. docs/benchmarks-cpu-training.md has the configuration and the results.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import train_vs_pytorch  # noqa: E402

if __name__ == "__main__":
    arguments = sys.argv[1:]
    if "--device" in arguments or any(a.startswith("--device=") for a in arguments):
        sys.exit("train_cpu_vs_pytorch: always the CPU; use train_vs_pytorch.py --device cuda for a GPU")
    sys.exit(train_vs_pytorch.main(["--device", "cpu"] + arguments))
