#!/usr/bin/python3
"""CPU training throughput: cudagrad's ResNet-50 against PyTorch's, same model, data and threads.

    /usr/bin/python3 benchmarks/train_cpu_vs_pytorch.py [--binary build/benchmarks/bench_train]
        [--batch 32] [--image-size 32] [--steps 10] [--warmup 2] [--threads 2] [--rounds 1]

Runs benchmarks/bench_train (cudagrad) and then the same loop in PyTorch: torchvision's
resnet50(num_classes=10) (standard stem), synthetic N(0, 1) images and fixed labels,
cross-entropy, backward, torch.optim.SGD(lr=0.01, momentum=0.9, weight_decay=5e-4), zero_grad,
with torch.set_num_threads(--threads). Prints images/s and milliseconds per phase (forward,
backward, optimiser) for both, and the ratio cudagrad / PyTorch (the target is >= 0.8).
With --rounds N the two alternate N times; the table shows each one's best round (a shared
2-vCPU VM varies by +-30% from round to round) and every round's images/s follow. Results go to docs/benchmarks-cpu-training.md by hand.
"""

import argparse
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_cudagrad(arguments):
    command = [str(arguments.binary), "--batch", str(arguments.batch), "--image-size", str(arguments.image_size),
               "--steps", str(arguments.steps), "--warmup", str(arguments.warmup), "--threads", str(arguments.threads)]
    print("$ " + " ".join(command), flush=True)
    try:
        completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except OSError as error:
        sys.exit("train_cpu_vs_pytorch: cannot run %s: %s (build it: cmake --build build --target bench_train)"
                 % (arguments.binary, error))
    print(completed.stdout, end="", flush=True)
    match = re.search(r"^RESULT (.*)$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or not match:
        sys.exit("train_cpu_vs_pytorch: bench_train failed (exit status %d)" % completed.returncode)
    values = dict(item.split("=") for item in match.group(1).split())
    return {key: float(value) for key, value in values.items()}


def run_pytorch(arguments):
    import torch
    import torchvision

    torch.set_num_threads(arguments.threads)
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=10)
    model.train()
    images = torch.randn(arguments.batch, 3, arguments.image_size, arguments.image_size)
    labels = torch.arange(arguments.batch) % 10
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    forward, backward, step = [], [], []
    for index in range(arguments.warmup + arguments.steps):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        forward_done = time.perf_counter()
        loss.backward()
        backward_done = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_done = time.perf_counter()
        if index >= arguments.warmup:
            forward.append(forward_done - start)
            backward.append(backward_done - forward_done)
            step.append(step_done - backward_done)
    mean = lambda values: 1000.0 * sum(values) / len(values)  # noqa: E731  (milliseconds)
    step_ms = mean(forward) + mean(backward) + mean(step)
    result = {"images_per_second": 1000.0 * arguments.batch / step_ms, "step_ms": step_ms, "forward_ms": mean(forward),
              "backward_ms": mean(backward), "optimizer_ms": mean(step), "threads": torch.get_num_threads()}
    print("PyTorch %s ResNet-50 training, batch %d, %d px, %d threads, loss %.4f: %.1f images/s"
          % (torch.__version__, arguments.batch, arguments.image_size, result["threads"], loss.item(),
             result["images_per_second"]), flush=True)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=ROOT / "build" / "benchmarks" / "bench_train", help="cudagrad's bench_train")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two this many times; best round counts")
    arguments = parser.parse_args()
    if min(arguments.batch, arguments.image_size, arguments.steps, arguments.threads, arguments.rounds) < 1:
        parser.error("--batch, --image-size, --steps, --threads and --rounds must be positive")
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as error:
        sys.exit("train_cpu_vs_pytorch: PyTorch is needed (%s); tools/install_deps.sh installs it" % error)

    our_rounds, their_rounds = [], []
    for _ in range(arguments.rounds):
        our_rounds.append(run_cudagrad(arguments))
        their_rounds.append(run_pytorch(arguments))
    best = lambda results: max(results, key=lambda result: result["images_per_second"])  # noqa: E731
    ours, theirs = best(our_rounds), best(their_rounds)

    print("\nResNet-50 training on the CPU: batch %d, %d x %d px, %d threads, %s, load average %.2f"
          % (arguments.batch, arguments.image_size, arguments.image_size, arguments.threads, platform.machine(),
             os.getloadavg()[0]))
    print("  %-10s %12s %12s %12s %12s %12s" % ("", "images/s", "step ms", "forward ms", "backward ms", "optimizer ms"))
    for name, result in (("cudagrad", ours), ("PyTorch", theirs)):
        print("  %-10s %12.1f %12.1f %12.1f %12.1f %12.1f" % (name, result["images_per_second"], result["step_ms"],
                                                             result["forward_ms"], result["backward_ms"],
                                                             result["optimizer_ms"]))
    ratio = ours["images_per_second"] / theirs["images_per_second"]
    print("  ratio cudagrad / PyTorch (best rounds): %.2fx (target >= 0.8x): %s"
          % (ratio, "met" if ratio >= 0.8 else "NOT met"))
    if arguments.rounds > 1:
        median = lambda results: statistics.median(result["images_per_second"] for result in results)  # noqa: E731
        print("  every round, images/s: cudagrad %s; PyTorch %s; ratio of medians %.2fx"
              % (" ".join("%.1f" % r["images_per_second"] for r in our_rounds),
                 " ".join("%.1f" % r["images_per_second"] for r in their_rounds),
                 median(our_rounds) / median(their_rounds)))
    for phase in ("forward_ms", "backward_ms", "optimizer_ms"):
        print("  %-13s cudagrad takes %.2fx PyTorch's time" % (phase[:-3], ours[phase] / theirs[phase]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
