#!/usr/bin/python3
"""ResNet-50 training throughput, cudagrad against PyTorch, same model, data, batch, precision and device.

    python3 benchmarks/train_vs_pytorch.py [--device auto|cpu|cuda] [--binary build/benchmarks/bench_train]
        [--batches 128] [--precisions fp32,tf32] [--image-size PX] [--classes N] [--steps N] [--warmup N]
        [--threads N] [--rounds N] [--small-stem] [--json results.json] [--torch-python PYTHON]

Runs benchmarks/bench_train (cudagrad) and the same measurement in PyTorch/torchvision, in
alternating rounds (round 1: cudagrad then PyTorch, round 2: PyTorch then cudagrad, ...), each
side in its own process so neither holds the other's memory or threads. Per case (batch x
precision) it prints images/s, milliseconds per step and per phase, peak device memory and the
ratio cudagrad / PyTorch in images/s (medians over the rounds; every round's numbers are in the
JSON).

Both sides: ResNet-50 v1.5 (torchvision.models.resnet50(num_classes=N); --small-stem: 3x3/1 conv1
and no max-pool), weights from a fixed seed, one fixed batch of N(0, 1) images (seed 1) and labels
i % N resident on the device, cross-entropy, SGD lr 0.01, momentum 0.9, Nesterov, weight decay
5e-4 on conv and linear weights only (none on batch-norm parameters and biases), zero_grad with
set_to_none. Each side: warm-up steps, then `steps` steps back to back with one synchronize
(images/s and step_ms come from this), then `steps` steps with a synchronize around each phase
(forward incl. loss, backward, optimiser), whose means are forward_ms / backward_ms /
optimizer_ms. On the CPU the two are one loop. Peak memory: our allocator's peak_bytes_in_use
and torch.cuda.max_memory_allocated(), both reset after the warm-up.

Precision (GPU): fp32 = torch.backends.cuda.matmul.allow_tf32 = False and
torch.backends.cudnn.allow_tf32 = False, cudagrad set_math_mode(fp32); tf32 = both True and
math mode tf32; bf16 = torch.autocast("cuda", torch.bfloat16) around the forward and loss (tf32
on), cudagrad math mode bf16 (conv and GEMM inputs rounded to bfloat16 with fp32 accumulation;
every tensor stays float32, so cudagrad moves twice PyTorch's activation bytes there).
torch.backends.cudnn.benchmark is on (--no-cudnn-benchmark turns it off).

Device: --device auto picks cuda when PyTorch sees a GPU, else the CPU comparison (defaults there
are the CPU configuration of docs/benchmarks-cpu-training.md: batch 32, 32 px, 10 classes, 2
threads, fp32). PyTorch: the first of --torch-python, $CUDAGRAD_TORCH_PYTHON, this Python,
/opt/torch/.venv/bin/python, /opt/*/.venv/bin/python3, python3, /usr/bin/python3 that imports
torch and torchvision (for cuda, one that sees a GPU). The driver itself needs only the standard
library.

Exit status: 0 when every case was compared, 1 when a case failed on either side (or PyTorch is
missing), 77 when every case was skipped (cuda requested without a GPU).
"""

import argparse
import glob
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
METRICS = ("images_per_second", "step_ms", "split_step_ms", "forward_ms", "backward_ms", "optimizer_ms",
           "peak_memory_bytes", "loss")
SKIPPED = 77


# --------------------------------------------------------------------------- the PyTorch side (worker)

def pytorch_worker(arguments):
    """Runs every case in PyTorch and writes a list of case dicts to --result-file."""
    import torch
    import torchvision

    device = torch.device(arguments.device)
    if arguments.device == "cpu" and arguments.threads > 0:
        torch.set_num_threads(arguments.threads)
    torch.backends.cudnn.benchmark = arguments.cudnn_benchmark
    cases = []
    for batch in arguments.batches:
        for precision in arguments.precisions:
            case = {"implementation": "pytorch", "device": arguments.device, "precision": precision, "batch": batch,
                    "status": "ok", "message": ""}
            if arguments.device == "cuda" and not torch.cuda.is_available():
                case.update(status="skipped", message="PyTorch sees no GPU")
            elif arguments.device == "cpu" and precision != "fp32":
                case.update(status="skipped", message="precision modes are compared on the GPU only")
            else:
                try:
                    case.update(pytorch_case(torch, torchvision, arguments, device, batch, precision))
                except Exception as error:  # noqa: BLE001  (report any failure as the case's result)
                    case.update(status="failed", message="%s: %s" % (type(error).__name__, error))
                if arguments.device == "cuda":
                    torch.cuda.empty_cache()
            cases.append(case)
            describe_case("PyTorch", case)
    info = {"torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
            "torch_threads": torch.get_num_threads()}
    if arguments.device == "cuda" and torch.cuda.is_available():
        info.update(gpu_name=torch.cuda.get_device_name(0), torch_cuda_version=torch.version.cuda,
                    cudnn_version=torch.backends.cudnn.version())
    with open(arguments.result_file, "w") as out:
        json.dump({"cases": cases, "info": info}, out)


def pytorch_case(torch, torchvision, arguments, device, batch, precision):
    on_gpu = device.type == "cuda"
    if on_gpu:
        tf32 = precision != "fp32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
    torch.manual_seed(0)
    model = torchvision.models.resnet50(num_classes=arguments.classes)
    if arguments.small_stem:
        model.conv1 = torch.nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = torch.nn.Identity()
    model.to(device).train()
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(batch, 3, arguments.image_size, arguments.image_size, generator=generator).to(device)
    labels = (torch.arange(batch) % arguments.classes).to(device)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=0.01, momentum=0.9, nesterov=True)
    autocast = precision == "bf16" and on_gpu

    def synchronize():
        if on_gpu:
            torch.cuda.synchronize(device)

    def forward():
        if autocast:
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                return torch.nn.functional.cross_entropy(model(images), labels)
        return torch.nn.functional.cross_entropy(model(images), labels)

    def step():
        loss = forward()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    loss = None
    for _ in range(arguments.warmup):
        loss = step()
    synchronize()
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(device)
    result = {}
    if on_gpu:
        start = time.perf_counter()
        for _ in range(arguments.steps):
            loss = step()
        synchronize()
        result["step_ms"] = 1000.0 * (time.perf_counter() - start) / arguments.steps
    phases = {"forward_ms": [], "backward_ms": [], "optimizer_ms": []}
    for _ in range(arguments.steps):
        synchronize()
        start = time.perf_counter()
        loss = forward()
        synchronize()
        forward_done = time.perf_counter()
        loss.backward()
        synchronize()
        backward_done = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize()
        step_done = time.perf_counter()
        phases["forward_ms"].append(1000.0 * (forward_done - start))
        phases["backward_ms"].append(1000.0 * (backward_done - forward_done))
        phases["optimizer_ms"].append(1000.0 * (step_done - backward_done))
    for name, values in phases.items():
        result[name] = sum(values) / len(values)
    result["split_step_ms"] = result["forward_ms"] + result["backward_ms"] + result["optimizer_ms"]
    result.setdefault("step_ms", result["split_step_ms"])
    result["images_per_second"] = 1000.0 * batch / result["step_ms"]
    result["peak_memory_bytes"] = torch.cuda.max_memory_allocated(device) if on_gpu else None
    result["loss"] = float(loss.item())
    if result["loss"] != result["loss"]:
        raise RuntimeError("the loss is NaN")
    return result


# --------------------------------------------------------------------------- the driver

def describe_case(side, case):
    if case["status"] == "ok":
        memory = case.get("peak_memory_bytes")
        print("  %-8s batch %4d %-4s %9.1f images/s  step %8.2f ms (split %.2f: forward %.2f, backward %.2f, "
              "optimizer %.2f)%s" % (side, case["batch"], case["precision"], case["images_per_second"], case["step_ms"],
                                     case["split_step_ms"], case["forward_ms"], case["backward_ms"],
                                     case["optimizer_ms"], "  peak %.0f MiB" % (memory / 2**20) if memory else ""),
              flush=True)
    else:
        print("  %-8s batch %4d %-4s %s: %s" % (side, case["batch"], case["precision"], case["status"].upper(),
                                                 case["message"]), flush=True)


def probe_python(python):
    """What a Python candidate offers: None if it cannot import torch and torchvision."""
    code = ("import json, torch, torchvision; print(json.dumps({'torch': torch.__version__, "
            "'cuda': torch.cuda.is_available()}))")
    try:
        completed = subprocess.run([python, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                   timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0 or not completed.stdout.strip():
        return None
    try:
        return json.loads(completed.stdout.strip().splitlines()[-1])
    except ValueError:
        return None


def find_torch_python(requested, want_cuda):
    candidates = [requested, os.environ.get("CUDAGRAD_TORCH_PYTHON"), sys.executable, "/opt/torch/.venv/bin/python"]
    candidates += sorted(glob.glob("/opt/*/.venv/bin/python3")) + [shutil.which("python3"), "/usr/bin/python3"]
    seen, fallback = set(), None
    for candidate in candidates:
        if not candidate or candidate in seen:
            continue
        seen.add(candidate)
        if os.sep in candidate and not os.path.exists(candidate):
            continue
        info = probe_python(candidate)
        if info is None:
            continue
        if requested and candidate == requested:
            return candidate, info
        if want_cuda is False or info["cuda"]:
            return candidate, info
        fallback = fallback or (candidate, info)
    return fallback if fallback else (None, None)


def run_cudagrad(arguments, round_index):
    with tempfile.TemporaryDirectory() as scratch:
        result_file = os.path.join(scratch, "cudagrad.json")
        command = [str(arguments.binary), "--device", arguments.device,
                   "--batches", ",".join(map(str, arguments.batches)), "--precisions", ",".join(arguments.precisions),
                   "--image-size", str(arguments.image_size), "--classes", str(arguments.classes),
                   "--steps", str(arguments.steps), "--warmup", str(arguments.warmup),
                   "--threads", str(arguments.threads if arguments.device == "cpu" else 0), "--json", result_file]
        if arguments.small_stem:
            command.append("--small-stem")
        print("round %d, cudagrad: $ %s" % (round_index + 1, " ".join(command)), flush=True)
        try:
            completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            output, status = completed.stdout, completed.returncode
        except OSError as error:
            output, status = "cannot run %s: %s (build it: cmake --build BUILD --target bench_train)" % (
                arguments.binary, error), -1
        print(output, end="", flush=True)
        try:
            with open(result_file) as source:
                report = json.load(source)
            return report["cases"], report.get("context", {})
        except (OSError, ValueError, KeyError):
            message = "bench_train exited with status %d and wrote no results: %s" % (
                status, (output.strip().splitlines() or [""])[-1][-300:])
            return [failed_case("cudagrad", arguments, batch, precision, message)
                    for batch in arguments.batches for precision in arguments.precisions], {}


def run_pytorch(arguments, round_index, python):
    if python is None:
        message = "no Python with torch and torchvision found (tried --torch-python, $CUDAGRAD_TORCH_PYTHON, ...)"
        return [failed_case("pytorch", arguments, b, p, message) for b in arguments.batches
                for p in arguments.precisions], {}
    with tempfile.TemporaryDirectory() as scratch:
        result_file = os.path.join(scratch, "pytorch.json")
        command = [python, str(pathlib.Path(__file__).resolve()), "--worker", "--device", arguments.device,
                   "--batches", ",".join(map(str, arguments.batches)), "--precisions", ",".join(arguments.precisions),
                   "--image-size", str(arguments.image_size), "--classes", str(arguments.classes),
                   "--steps", str(arguments.steps), "--warmup", str(arguments.warmup),
                   "--threads", str(arguments.threads), "--result-file", result_file]
        if arguments.small_stem:
            command.append("--small-stem")
        if not arguments.cudnn_benchmark:
            command.append("--no-cudnn-benchmark")
        print("round %d, PyTorch (%s)" % (round_index + 1, python), flush=True)
        completed = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        print(completed.stdout, end="", flush=True)
        try:
            with open(result_file) as source:
                report = json.load(source)
            return report["cases"], report.get("info", {})
        except (OSError, ValueError, KeyError):
            message = "the PyTorch worker exited with status %d: %s" % (
                completed.returncode, (completed.stdout.strip().splitlines() or [""])[-1][-300:])
            return [failed_case("pytorch", arguments, b, p, message) for b in arguments.batches
                    for p in arguments.precisions], {}


def failed_case(implementation, arguments, batch, precision, message):
    return {"implementation": implementation, "device": arguments.device, "precision": precision, "batch": batch,
            "status": "failed", "message": message}


def summarise(rounds):
    """Median (and best) of each metric over the rounds that succeeded; else the first round's status."""
    ok = [case for case in rounds if case.get("status") == "ok"]
    if not ok:
        first = rounds[0]
        return {"status": first.get("status", "failed"), "message": first.get("message", "")}
    summary = {"status": "ok", "message": "", "rounds": len(ok),
               "round_images_per_second": [case["images_per_second"] for case in ok],
               "best_images_per_second": max(case["images_per_second"] for case in ok)}
    for metric in METRICS:
        values = [case[metric] for case in ok if case.get(metric) is not None]
        summary[metric] = statistics.median(values) if values else None
    if len(ok) < len(rounds):
        summary["message"] = "%d of %d rounds failed: %s" % (
            len(rounds) - len(ok), len(rounds), next(c["message"] for c in rounds if c.get("status") != "ok"))
    return summary


def git_commit():
    if os.environ.get("CUDAGRAD_COMMIT"):
        return os.environ["CUDAGRAD_COMMIT"]
    try:
        completed = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, text=True)
        if completed.returncode == 0 and completed.stdout.strip():
            dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
            return completed.stdout.strip() + ("+changes" if dirty else "")
    except OSError:
        pass
    commit_file = ROOT / "COMMIT"
    return commit_file.read_text().strip() if commit_file.exists() else ""


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--binary", type=pathlib.Path, default=None,
                        help="cudagrad's bench_train (default: build/benchmarks/bench_train)")
    parser.add_argument("--batches", "--batch", default=None, help="comma-separated (default: 32 on the CPU, 128 on a GPU)")
    parser.add_argument("--precisions", default=None, help="fp32,tf32,bf16 (default: fp32 on the CPU, all on a GPU)")
    parser.add_argument("--image-size", type=int, default=None, help="pixels (default: 32 on the CPU, 224 on a GPU)")
    parser.add_argument("--classes", type=int, default=None, help="default: 10 on the CPU, 1000 on a GPU")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per measurement (default 10 CPU, 20 GPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 2 CPU, 5 GPU)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for both sides (default 2)")
    parser.add_argument("--rounds", type=int, default=1, help="alternate the two sides this many times")
    parser.add_argument("--small-stem", action="store_true", help="3x3/1 conv1 and no max-pool")
    parser.add_argument("--no-cudnn-benchmark", dest="cudnn_benchmark", action="store_false",
                        help="leave torch.backends.cudnn.benchmark off")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="write the comparison here")
    parser.add_argument("--torch-python", default=None, help="Python interpreter with torch and torchvision")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.worker:
        arguments.batches = [int(b) for b in arguments.batches.split(",")]
        arguments.precisions = arguments.precisions.split(",")
    return parser, arguments


def resolve_defaults(parser, arguments, on_gpu):
    arguments.batches = [int(b) for b in (arguments.batches or ("128" if on_gpu else "32")).split(",") if b]
    arguments.precisions = [p for p in (arguments.precisions or ("fp32,tf32,bf16" if on_gpu else "fp32")).split(",") if p]
    for name, gpu_value, cpu_value in (("image_size", 224, 32), ("classes", 1000, 10), ("steps", 20, 10),
                                       ("warmup", 5, 2)):
        if getattr(arguments, name) is None:
            setattr(arguments, name, gpu_value if on_gpu else cpu_value)
    if any(p not in ("fp32", "tf32", "bf16") for p in arguments.precisions):
        parser.error("--precisions takes fp32, tf32 and bf16")
    if min(arguments.batches + [arguments.image_size, arguments.classes, arguments.steps, arguments.threads,
                                arguments.rounds]) < 1 or arguments.warmup < 0:
        parser.error("--batches, --image-size, --classes, --steps, --threads and --rounds must be positive")
    if arguments.binary is None:
        arguments.binary = ROOT / "build" / "benchmarks" / "bench_train"


def main(argv=None):
    parser, arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    if arguments.worker:
        pytorch_worker(arguments)
        return 0

    want_cuda = {"cuda": True, "cpu": False, "auto": None}[arguments.device]
    python, python_info = find_torch_python(arguments.torch_python, want_cuda)
    if arguments.device == "auto":
        arguments.device = "cuda" if python_info and python_info["cuda"] else "cpu"
    resolve_defaults(parser, arguments, arguments.device == "cuda")
    print("train_vs_pytorch: device %s, batches %s, precisions %s, %d px, %d classes, %d steps after %d warm-up, "
          "%d round(s); PyTorch: %s" % (arguments.device, ",".join(map(str, arguments.batches)),
                                       ",".join(arguments.precisions), arguments.image_size, arguments.classes,
                                       arguments.steps, arguments.warmup, arguments.rounds,
                                       "%s (torch %s)" % (python, python_info["torch"]) if python else "NOT FOUND"),
          flush=True)

    ours_rounds, theirs_rounds = [], []
    ours_context, theirs_info = {}, {}
    for round_index in range(arguments.rounds):
        sides = ("cudagrad", "pytorch") if round_index % 2 == 0 else ("pytorch", "cudagrad")
        for side in sides:
            if side == "cudagrad":
                cases, context = run_cudagrad(arguments, round_index)
                ours_rounds.append(cases)
                ours_context = context or ours_context
            else:
                cases, info = run_pytorch(arguments, round_index, python)
                theirs_rounds.append(cases)
                theirs_info = info or theirs_info

    def find(cases, batch, precision):
        for case in cases:
            if case.get("batch") == batch and case.get("precision") == precision:
                return case
        return {"status": "failed", "message": "no result for this case"}

    results = []
    for batch in arguments.batches:
        for precision in arguments.precisions:
            ours = summarise([find(cases, batch, precision) for cases in ours_rounds])
            theirs = summarise([find(cases, batch, precision) for cases in theirs_rounds])
            entry = {"batch": batch, "precision": precision, "cudagrad": ours, "pytorch": theirs}
            if ours["status"] == "ok" and theirs["status"] == "ok":
                entry.update(status="ok", message="",
                             ratio=ours["images_per_second"] / theirs["images_per_second"],
                             ratio_best=ours["best_images_per_second"] / theirs["best_images_per_second"])
            else:
                statuses = (ours["status"], theirs["status"])
                entry["status"] = "failed" if "failed" in statuses else "skipped"
                entry["message"] = "; ".join("%s %s: %s" % (name, side["status"], side["message"])
                                             for name, side in (("cudagrad", ours), ("PyTorch", theirs))
                                             if side["status"] != "ok")
                entry["ratio"] = None
            results.append(entry)

    print("\nResNet-50 training, cudagrad vs PyTorch on %s: %d x %d px, %d classes, %s stem, median of %d round(s)"
          % (theirs_info.get("gpu_name") or arguments.device, arguments.image_size, arguments.image_size,
             arguments.classes, "small" if arguments.small_stem else "standard", arguments.rounds))
    print("  %-6s %-5s %12s %12s %7s %11s %11s %11s %11s" % ("batch", "math", "ours img/s", "torch img/s", "ratio",
                                                            "ours ms", "torch ms", "ours MiB", "torch MiB"))
    for entry in results:
        if entry["status"] != "ok":
            print("  %-6d %-5s %s: %s" % (entry["batch"], entry["precision"], entry["status"].upper(), entry["message"]))
            continue
        ours, theirs = entry["cudagrad"], entry["pytorch"]
        mib = lambda value: "%.0f" % (value / 2**20) if value else "-"  # noqa: E731
        print("  %-6d %-5s %12.1f %12.1f %6.2fx %11.2f %11.2f %11s %11s"
              % (entry["batch"], entry["precision"], ours["images_per_second"], theirs["images_per_second"],
                 entry["ratio"], ours["step_ms"], theirs["step_ms"], mib(ours["peak_memory_bytes"]),
                 mib(theirs["peak_memory_bytes"])))
        for phase in ("forward_ms", "backward_ms", "optimizer_ms"):
            print("  %13s %-9s ours %9.2f ms, PyTorch %9.2f ms (%.2fx)" % ("", phase[:-3], ours[phase], theirs[phase],
                                                                         ours[phase] / theirs[phase]))

    if arguments.json:
        context = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "device": arguments.device,
                   "gpu_name": theirs_info.get("gpu_name", ""), "commit": ours_context.get("commit") or git_commit(),
                   "cudagrad_devices": ours_context.get("cudagrad_devices", ""), "host": platform.node(),
                   "machine": platform.machine(), "load_average": os.getloadavg()[0], "torch_python": python or "",
                   "image_size": arguments.image_size, "classes": arguments.classes,
                   "stem": "small" if arguments.small_stem else "standard", "steps": arguments.steps,
                   "warmup": arguments.warmup, "rounds": arguments.rounds, "threads": arguments.threads,
                   "cudnn_benchmark": arguments.cudnn_benchmark,
                   "optimizer": "SGD lr 0.01 momentum 0.9 nesterov, weight decay 5e-4 (conv/linear weights)"}
        context.update(theirs_info)
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        with open(arguments.json, "w") as out:
            json.dump({"kind": "cudagrad_train_vs_pytorch", "context": context, "results": results,
                       "rounds": {"cudagrad": ours_rounds, "pytorch": theirs_rounds}}, out, indent=1)
        print("wrote %s" % arguments.json)

    statuses = [entry["status"] for entry in results]
    if "failed" in statuses or python is None:
        return 1
    if statuses and all(status == "skipped" for status in statuses):
        return SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main())
