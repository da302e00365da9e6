#!/usr/bin/env python3
"""Turns benchmark results into docs/benchmarks.md and docs/benchmarks.svg (standard library only).

    tools/benchmarks_to_markdown.py RESULT.json [RESULT.json ...] [--output docs/benchmarks.md]
        [--svg docs/benchmarks.svg] [--copy-bandwidth GB/s] [--title TEXT]

Inputs, recognised by their contents:
  - Google Benchmark JSON (a bench_* binary run with --benchmark_out=FILE
    --benchmark_out_format=json). Case names follow "<op>/<shape>/b<batch>/<implementation>"
    (benchmarks/gpu_benchmark.hpp); GPU cases use manual time, so their names end in
    "/manual_time". Counters TFLOP/s, GFLOP/s, GB/s, FLOPS and vs_vendor are shown.
  - the training comparison of benchmarks/train_vs_pytorch.py --json
    ("kind": "cudagrad_train_vs_pytorch"), and bench_train --json ("cudagrad_train_benchmark").

Output: a header (device, date, commit: from the JSON contexts, else `git rev-parse`), then per
op family and pass one table: rows = layer shape and batch, one column per implementation with
its time, its rate and, for a non-vendor implementation, vs_vendor (the vendor's time / ours:
> 1 is faster than cuDNN/cuBLAS). A case that was skipped says so; a case whose correctness check
failed says FAILED and never shows a number. GPU families where every case was skipped (the
machine had no GPU) are listed as not yet measured on a GPU. The SVG (hand-written) shows the
kernel ladders: each GPU implementation's speed as a percentage of the vendor's (geometric mean
of vs_vendor over the op's shapes) for compute-bound ops, and as a percentage of the device's
copy bandwidth (a "copy" benchmark in the inputs, else --copy-bandwidth, default 3002 GB/s as
measured on an H100 in /work/shared/ANCHORS.md) for the memory-bound ones (GB/s counters).
"""

import argparse
import datetime
import html
import json
import math
import os
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENDORS = ("cudnn", "cublas", "vendor")
PASS_WORDS = {"forward", "backward", "eval", "train", "fp32", "tf32", "bf16", "step", "data", "weights", "inference"}
NAME_SUFFIXES = re.compile(r"^(manual_time|real_time|process_time|min_time:.*|min_warmup_time:.*|iterations:.*|"
                           r"repeats:.*|threads:.*)$")
DEFAULT_COPY_BANDWIDTH = 3002.0  # GB/s, device-to-device copy on an H100 (ANCHORS.md)


# --------------------------------------------------------------------------- reading


class Case:
    """One benchmark case: op, shape, batch, implementation, status and numbers."""

    def __init__(self, name, op, shape, batch, implementation, gpu):
        self.name, self.op, self.shape, self.batch, self.implementation, self.gpu = (
            name, op, shape, batch, implementation, gpu)
        self.status, self.message = "ok", ""
        self.time_ms = None
        self.counters = {}

    @property
    def is_vendor(self):
        return any(vendor in self.implementation.lower() for vendor in VENDORS)

    @property
    def family(self):
        return op_family(self.op)[0]


def op_family(op):
    """("conv2d", "forward tf32") from "conv2d_forward_tf32"; ("relu", "forward") from "relu_forward"."""
    tokens = op.split("_")
    for index, token in enumerate(tokens):
        if index > 0 and token in PASS_WORDS:
            return "_".join(tokens[:index]), " ".join(tokens[index:])
    return op, ""


def parse_case_name(name, gpu_hint):
    parts = name.split("/")
    gpu = gpu_hint or "manual_time" in parts
    while len(parts) > 1 and NAME_SUFFIXES.match(parts[-1]):
        parts.pop()
    op, rest = parts[0], parts[1:]
    batch_index = next((i for i, part in enumerate(rest) if re.fullmatch(r"b\d+", part)), None)
    if batch_index is not None:
        shape = "/".join(rest[:batch_index])
        batch = int(rest[batch_index][1:])
        implementation = "/".join(rest[batch_index + 1:]) or ("cuda" if gpu else "cpu")
    elif gpu and len(rest) >= 2:
        shape, batch, implementation = "/".join(rest[:-1]), None, rest[-1]
    else:
        shape, batch, implementation = "/".join(rest), None, "cuda" if gpu else "cpu"
    return Case(name, op, shape or "-", batch, implementation, gpu)


UNIT_TO_MS = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}


def read_google_benchmark(document, source):
    """Cases from a Google Benchmark JSON document (medians or means when it holds aggregates)."""
    entries = document.get("benchmarks", [])
    aggregated = {}
    for entry in entries:
        if entry.get("run_type") == "aggregate":
            aggregated.setdefault(entry.get("run_name", entry["name"]), {})[entry.get("aggregate_name")] = entry
    chosen = []
    for entry in entries:
        run_name = entry.get("run_name", entry["name"])
        if entry.get("run_type") == "aggregate":
            kinds = aggregated[run_name]
            preferred = kinds.get("median") or kinds.get("mean")
            if entry is preferred:
                chosen.append((run_name, entry))
        elif run_name not in aggregated:
            chosen.append((run_name, entry))
    context = document.get("context", {})
    cases = []
    for run_name, entry in chosen:
        case = parse_case_name(run_name, gpu_hint=False)
        case.source = source
        if case.batch is None and not case.gpu and str(context.get("batch", "")).isdigit():
            case.batch = int(context["batch"])  # bench_cpu_ops records its CUDAGRAD_BENCH_BATCH there
        message = str(entry.get("error_message", "") or "")
        if entry.get("error_occurred") or message:
            skipped = message.lower().startswith("skipped") or not entry.get("error_occurred")
            case.status = "skipped" if skipped else "failed"
            case.message = message
            if "GPU" in message or "CUDA" in message:
                case.gpu = True
        else:
            case.time_ms = float(entry.get("real_time", 0.0)) * UNIT_TO_MS.get(entry.get("time_unit", "ns"), 1e-6)
            for key in ("TFLOP/s", "GFLOP/s", "GB/s", "vs_vendor"):
                if isinstance(entry.get(key), (int, float)):
                    case.counters[key] = float(entry[key])
            if isinstance(entry.get("FLOPS"), (int, float)) and "GFLOP/s" not in case.counters:
                case.counters["GFLOP/s"] = float(entry["FLOPS"]) / 1e9
        cases.append(case)
    return cases


class Inputs:
    def __init__(self):
        self.cases = []  # Case, in file order
        self.contexts = []  # (source, Google Benchmark context)
        self.training = []  # (source, train_vs_pytorch document)
        self.train_alone = []  # (source, bench_train document)
        self.truncated = []  # names of files cut short


def parse_json(text):
    """The document; a Google Benchmark file cut short (the run was killed by a timeout) is closed
    after its last complete case and marked "truncated"."""
    try:
        return json.loads(text)
    except ValueError:
        start = text.find('"benchmarks": [')
        end = text.rfind("\n    }")
        if start < 0 or end < start:
            raise
        document = json.loads(text[:end + len("\n    }")] + "\n  ]\n}\n")
        document["truncated"] = True
        return document


def load_inputs(paths):
    inputs = Inputs()
    for path in paths:
        path = pathlib.Path(path)
        try:
            document = parse_json(path.read_text())
        except ValueError as error:
            raise ValueError("%s: not JSON (%s)" % (path, error)) from None
        if isinstance(document, dict) and document.get("truncated"):
            inputs.truncated.append(path.name)
        kind = document.get("kind") if isinstance(document, dict) else None
        if kind == "cudagrad_train_vs_pytorch":
            inputs.training.append((path.name, document))
        elif kind == "cudagrad_train_benchmark":
            inputs.train_alone.append((path.name, document))
        elif isinstance(document, dict) and "benchmarks" in document:
            inputs.contexts.append((path.name, document.get("context", {})))
            inputs.cases.extend(read_google_benchmark(document, path.name))
        else:
            raise ValueError("%s: neither Google Benchmark JSON nor a cudagrad training result" % path)
    return inputs


# --------------------------------------------------------------------------- formatting


def escape(text):
    return str(text).replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def format_time(ms):
    if ms is None:
        return "-"
    if ms < 1.0:
        return "%.3g us" % (ms * 1e3)
    if ms < 1000.0:
        return "%.3g ms" % ms if ms < 100 else "%.0f ms" % ms
    return "%.3g s" % (ms / 1e3)


def three_digits(value):
    """At least three significant digits, no exponent: 0.511, 42.3, 2405."""
    return "%.0f" % value if value >= 100 else "%.3g" % value


def format_rate(counters):
    for key in ("TFLOP/s", "GFLOP/s", "GB/s"):
        if key in counters:
            return "%s %s" % (three_digits(counters[key]), key)
    return ""


def case_cell(case):
    if case is None:
        return ""
    if case.status == "skipped":
        return "skipped"
    if case.status == "failed":
        message = case.message if len(case.message) <= 90 else case.message[:87] + "..."
        return "**FAILED**: " + escape(message)
    parts = [format_time(case.time_ms)]
    rate = format_rate(case.counters)
    if rate:
        parts.append(rate)
    if not case.is_vendor and "vs_vendor" in case.counters:
        parts.append("**%.2fx** vendor" % case.counters["vs_vendor"])
    return " · ".join(parts)


def geometric_mean(values):
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else None


def ordered_unique(items):
    seen, result = set(), []
    for item in items:
        if item not in seen:
            seen.add(item)
            result.append(item)
    return result


def op_table(cases):
    """Markdown lines of one op's table: rows (shape, batch), a column per implementation."""
    implementations = ordered_unique(case.implementation for case in cases)
    vendors = [i for i in implementations if any(v in i.lower() for v in VENDORS)]
    implementations = vendors + [i for i in implementations if i not in vendors]
    has_batch = any(case.batch is not None for case in cases)
    rows = ordered_unique((case.shape, case.batch) for case in cases)
    by_key = {(case.shape, case.batch, case.implementation): case for case in cases}
    header = ["shape"] + (["batch"] if has_batch else []) + [
        "%s (vendor)" % i if i in vendors else i for i in implementations]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for shape, batch in rows:
        cells = ["`%s`" % escape(shape)] + (["" if batch is None else str(batch)] if has_batch else [])
        cells += [case_cell(by_key.get((shape, batch, i))) for i in implementations]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def family_sections(cases, heading_level, gpu):
    """One section per op family; within it a table per op (pass / precision)."""
    lines = []
    families = ordered_unique(case.family for case in cases)
    for family in families:
        family_cases = [case for case in cases if case.family == family]
        lines += ["", "#" * heading_level + " " + family]
        if gpu and all(case.status == "skipped" for case in family_cases):
            reasons = ordered_unique(re.sub(r"^skipped:\s*", "", case.message) for case in family_cases)
            ops = ordered_unique(case.op for case in family_cases)
            lines.append("")
            lines.append("Not yet measured on a GPU: %d %s (%s) skipped: %s."
                         % (len(family_cases), "case" if len(family_cases) == 1 else "cases",
                            ", ".join("`%s`" % op for op in ops), escape("; ".join(reasons))))
            continue
        for op in ordered_unique(case.op for case in family_cases):
            op_cases = [case for case in family_cases if case.op == op]
            lines += ["", "#" * (heading_level + 1) + " `%s`" % op, ""]
            lines += op_table(op_cases)
    return lines


def mib(value):
    return "%.0f MiB" % (value / 2**20) if isinstance(value, (int, float)) and value else "-"


def ms_or_dash(value):
    return "%.2f" % value if isinstance(value, (int, float)) else "-"


def training_section(inputs):
    lines = []
    for source, document in inputs.training:
        context = document.get("context", {})
        device = context.get("gpu_name") or context.get("device", "?")
        lines += ["", "### `%s`: %s, %s x %s px, %s classes, %s stem" % (
            escape(source), escape(device), context.get("image_size", "?"), context.get("image_size", "?"),
            context.get("classes", "?"), context.get("stem", "?")), ""]
        lines.append("PyTorch %s (torchvision %s)%s; %s steps after %s warm-up, median of %s "
                     "round(s); %s. Date %s, commit %s." % (
                         context.get("torch_version", "?"), context.get("torchvision_version", "?"),
                         (", cuDNN %s, cudnn.benchmark %s" % (context.get("cudnn_version", "?"),
                                                             "on" if context.get("cudnn_benchmark") else "off"))
                         if context.get("device") == "cuda" else ", %s threads" % context.get("threads", "?"),
                         context.get("steps", "?"),
                         context.get("warmup", "?"), context.get("rounds", "?"), context.get("optimizer", ""),
                         context.get("date", "?"), context.get("commit") or "?"))
        if isinstance(context.get("load_average"), (int, float)):
            lines[-1] += " Load average %.2f when it ended." % context["load_average"]
        lines += ["", "| batch | precision | cudagrad img/s | PyTorch img/s | ratio | cudagrad step ms "
                  "(forward / backward / optimiser) | PyTorch step ms (forward / backward / optimiser) | "
                  "peak memory cudagrad / PyTorch |", "|---|---|---|---|---|---|---|---|"]
        for entry in document.get("results", []):
            ours, theirs = entry.get("cudagrad", {}), entry.get("pytorch", {})
            if entry.get("status") != "ok":
                lines.append("| %s | %s | %s | | | %s | | |" % (
                    entry.get("batch"), entry.get("precision"), entry.get("status", "failed").upper(),
                    escape(entry.get("message", ""))))
                continue

            def phases(side):
                return "%s (%s / %s / %s)" % (ms_or_dash(side.get("step_ms")), ms_or_dash(side.get("forward_ms")),
                                              ms_or_dash(side.get("backward_ms")), ms_or_dash(side.get("optimizer_ms")))
            lines.append("| %s | %s | %.1f | %.1f | **%.2fx** | %s | %s | %s / %s |" % (
                entry["batch"], entry["precision"], ours["images_per_second"], theirs["images_per_second"],
                entry["ratio"], phases(ours), phases(theirs), mib(ours.get("peak_memory_bytes")),
                mib(theirs.get("peak_memory_bytes"))))
    for source, document in inputs.train_alone:
        context = document.get("context", {})
        lines += ["", "### `%s`: cudagrad alone (bench_train), %s" % (escape(source), context.get("date", "?")), "",
                  "| device | batch | precision | px | img/s | step ms | split: forward / backward / optimiser ms "
                  "| peak memory |", "|---|---|---|---|---|---|---|---|"]
        for case in document.get("cases", []):
            if case.get("status") != "ok":
                lines.append("| %s | %s | %s | %s | %s | %s | | |" % (
                    case.get("device"), case.get("batch"), case.get("precision"), case.get("image_size"),
                    case.get("status", "failed").upper(), escape(case.get("message", ""))))
                continue
            lines.append("| %s | %s | %s | %s | %.1f | %.2f | %s / %s / %s | %s |" % (
                case["device"], case["batch"], case["precision"], case["image_size"], case["images_per_second"],
                case["step_ms"], ms_or_dash(case.get("forward_ms")), ms_or_dash(case.get("backward_ms")),
                ms_or_dash(case.get("optimizer_ms")), mib(case.get("peak_memory_bytes"))))
    return lines


# --------------------------------------------------------------------------- the SVG ladder chart


def ladder_rows(cases, copy_bandwidth):
    """(panel, label, percent, is_vendor, detail) for the chart, from the GPU cases that ran."""
    rows = []
    ok = [case for case in cases if case.gpu and case.status == "ok"]
    for op in ordered_unique(case.op for case in ok):
        op_cases = [case for case in ok if case.op == op]
        memory_bound = all("GB/s" in case.counters and "TFLOP/s" not in case.counters for case in op_cases)
        for implementation in ordered_unique(case.implementation for case in op_cases):
            chosen = [case for case in op_cases if case.implementation == implementation]
            vendor = chosen[0].is_vendor
            if memory_bound:
                percent = geometric_mean([100.0 * case.counters["GB/s"] / copy_bandwidth for case in chosen])
                panel = "memory"
            elif vendor:
                continue  # 100% by definition: the chart's reference line
            else:
                percent = geometric_mean([100.0 * case.counters["vs_vendor"] for case in chosen
                                          if "vs_vendor" in case.counters])
                panel = "compute"
            if percent is not None:
                rows.append((panel, "%s · %s" % (op, implementation), percent, vendor, len(chosen)))
    return rows


def copy_bandwidth_from(cases, fallback):
    measured = [case.counters["GB/s"] for case in cases if case.gpu and case.status == "ok"
                and case.op.split("_")[0] in ("copy", "device") and "GB/s" in case.counters]
    return (max(measured), "measured copy benchmark") if measured else (fallback, "copy bandwidth %g GB/s" % fallback)


def render_svg(cases, copy_bandwidth, title):
    rows = ladder_rows(cases, copy_bandwidth[0])
    width, label_width, bar_width, row_height = 960, 330, 520, 20
    panels = [("compute", "Compute-bound kernels: speed as % of the vendor library (geometric mean of vs_vendor "
                          "over shapes; the vendor is the 100% line)"),
              ("memory", "Memory-bound kernels: bandwidth as %% of the device copy (%s)" % copy_bandwidth[1])]
    body, y = [], 50
    if not rows:
        body.append('<text x="20" y="%d" font-size="14">Not yet measured on a GPU: no GPU benchmark case ran in the '
                    'inputs.</text>' % (y + 10))
        y += 40
    for panel, caption in panels:
        panel_rows = [row for row in rows if row[0] == panel]
        if not panel_rows:
            continue
        scale_max = max(110.0, 1.05 * max(row[2] for row in panel_rows))
        body.append('<text x="20" y="%d" font-size="14" font-weight="bold">%s</text>' % (y, html.escape(caption)))
        y += 12
        top = y
        for tick in range(0, int(scale_max) + 1, 25):
            x = label_width + bar_width * tick / scale_max
            body.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="1"/>' % (
                x, top, x, top + row_height * len(panel_rows), "#888" if tick == 100 else "#ddd"))
            body.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="#555">%d%%</text>' % (
                x, top + row_height * len(panel_rows) + 12, tick))
        for panel_name, label, percent, vendor, count in panel_rows:
            length = bar_width * min(percent, scale_max) / scale_max
            body.append('<text x="%d" y="%d" font-size="11" text-anchor="end">%s</text>' % (
                label_width - 8, y + 14, html.escape(label)))
            body.append('<rect class="bar" x="%d" y="%d" width="%.1f" height="%d" fill="%s"><title>%s: %.1f%% '
                        '(%d shapes)</title></rect>' % (label_width, y + 3, length, row_height - 6,
                                                        "#7f7f7f" if vendor else "#2b6cb0", html.escape(label),
                                                        percent, count))
            body.append('<text x="%.1f" y="%d" font-size="10">%.0f%%</text>' % (label_width + length + 4, y + 14,
                                                                               percent))
            y += row_height
        y += 40
    height = y + 10
    return "\n".join(['<?xml version="1.0" encoding="UTF-8"?>',
                      '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
                      'font-family="sans-serif">' % (width, height, width, height),
                      '<rect width="100%" height="100%" fill="white"/>',
                      '<text x="20" y="24" font-size="16" font-weight="bold">%s</text>' % html.escape(title)]
                     + body + ["</svg>", ""])


# --------------------------------------------------------------------------- the document


def git_commit():
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
        if head.returncode != 0:
            raise OSError
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
        return head.stdout.strip() + (" (with uncommitted changes)" if dirty else "")
    except OSError:
        commit_file = ROOT / "COMMIT"
        return commit_file.read_text().strip() if commit_file.exists() else "unknown"


def header_facts(inputs):
    gpu_names, cpu_lines, dates, commits = [], [], [], []
    for _, context in inputs.contexts:
        if context.get("gpu_name"):
            gpu_names.append(context["gpu_name"])
        if context.get("num_cpus"):
            load = context.get("load_avg") or []
            cpu_lines.append("%s: %s CPUs at %s MHz%s" % (
                context.get("host_name", "host"), context["num_cpus"], context.get("mhz_per_cpu", "?"),
                ", load average %.2f at the start" % load[0] if load else ""))
        if context.get("date"):
            dates.append(context["date"])
        if context.get("commit"):
            commits.append(context["commit"])
    for _, document in inputs.training + inputs.train_alone:
        context = document.get("context", {})
        if context.get("gpu_name"):
            gpu_names.append(context["gpu_name"])
        if context.get("date"):
            dates.append(context["date"])
        if context.get("commit"):
            commits.append(context["commit"])
    devices = ordered_unique(line for _, context in inputs.contexts
                             for line in str(context.get("cudagrad_devices") or context.get("devices", "")).splitlines() if line.strip())
    return {"gpu": ", ".join(ordered_unique(gpu_names)) or "none (no GPU case ran)",
            "cpu": "; ".join(ordered_unique(cpu_lines)) or "?", "devices": devices,
            "dates": ordered_unique(dates), "commits": ordered_unique(commits) or [git_commit()]}


def render_markdown(inputs, sources, svg_name, command, notes=()):
    facts = header_facts(inputs)
    gpu_cases = [case for case in inputs.cases if case.gpu]
    cpu_cases = [case for case in inputs.cases if not case.gpu]
    gpu_ran = any(case.status != "skipped" for case in gpu_cases)
    lines = ["# Benchmarks", "",
             "Generated by `tools/benchmarks_to_markdown.py` (do not edit by hand; how the numbers are measured and "
             "how to regenerate this page: [measurement.md](measurement.md)).", "",
             "- GPU: %s" % escape(facts["gpu"]),
             "- CPU: %s" % escape(facts["cpu"]),
             "- date: %s" % escape(", ".join(facts["dates"]) or "?"),
             "- commit: %s" % escape(", ".join(facts["commits"])),
             "- inputs: %s" % ", ".join("`%s`%s" % (escape(source), " (cut short: the run was stopped by its time "
                                                                  "limit; the cases it finished are shown)"
                                                 if source in inputs.truncated else "") for source in sources)]
    if facts["devices"]:
        lines += ["- cudagrad's view of the devices:", ""] + ["      " + line for line in facts["devices"]]
    for note in notes:
        lines += ["", note]
    lines += ["", "Cells: time per call · rate (TFLOP/s = 2 x multiply-adds per second; GB/s = the bytes the op must "
              "move at least) · **vs_vendor** (the vendor's time / ours: above 1 is faster than cuDNN/cuBLAS on the "
              "same shape in the same run). FAILED: the correctness check against the CPU reference failed, so "
              "nothing was timed."]

    lines += ["", "## GPU kernels", ""]
    if not gpu_cases:
        lines.append("Not yet measured on a GPU (no GPU benchmark results among the inputs).")
    elif not gpu_ran:
        lines.append("Not yet measured on a GPU: every GPU case in the inputs was skipped (the machine that ran "
                     "them had no usable GPU).")
    if gpu_ran:
        lines.append("![kernel ladders](%s)" % svg_name)
    if gpu_cases:
        lines += family_sections(gpu_cases, 3, gpu=True)

    lines += ["", "## ResNet-50 training: cudagrad and PyTorch", ""]
    training_lines = training_section(inputs)
    if training_lines:
        lines.append("Ratio = cudagrad's images/s / PyTorch's on the same device, batch and precision, measured in "
                     "the same run (`benchmarks/train_vs_pytorch.py`).")
        lines += training_lines
    gpu_training = any(document.get("context", {}).get("device") == "cuda" and
                       any(entry.get("status") == "ok" for entry in document.get("results", []))
                       for _, document in inputs.training)
    if not gpu_training:
        lines += ["", "GPU training: not yet measured on a GPU."]

    if cpu_cases:
        lines += ["", "## CPU ops", "", "Wall-clock rates on the CPU (`benchmarks/bench_cpu_ops` and friends); "
                  "the batch is the run's CUDAGRAD_BENCH_BATCH (default 8)."]
        lines += family_sections(cpu_cases, 3, gpu=False)
    lines += ["", "---", "", "Regenerate: `%s`" % command, ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="Google Benchmark JSON files and training-comparison JSON files")
    parser.add_argument("--output", default=str(ROOT / "docs" / "benchmarks.md"), help="Markdown file to write")
    parser.add_argument("--svg", default=None, help="SVG chart to write (default: beside --output, benchmarks.svg)")
    parser.add_argument("--copy-bandwidth", type=float, default=DEFAULT_COPY_BANDWIDTH,
                        help="GB/s that memory-bound kernels are compared with when no copy benchmark ran")
    parser.add_argument("--title", default="cudagrad kernel ladders", help="title of the SVG chart")
    parser.add_argument("--note", action="append", default=[],
                        help="a paragraph to print under the header (repeatable), e.g. what the machine was doing")
    arguments = parser.parse_args(argv)

    try:
        inputs = load_inputs(arguments.inputs)
    except (OSError, ValueError) as error:
        print("benchmarks_to_markdown: %s" % error, file=sys.stderr)
        return 1
    output = pathlib.Path(arguments.output)
    svg = pathlib.Path(arguments.svg) if arguments.svg else output.with_suffix(".svg")
    copy_bandwidth = copy_bandwidth_from(inputs.cases, arguments.copy_bandwidth)
    svg_relative = os.path.relpath(svg, output.parent)
    shown_command = "tools/benchmarks_to_markdown.py " + " ".join(
        os.path.basename(path) for path in arguments.inputs) + " --output %s" % output.name
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_markdown(inputs, [os.path.basename(p) for p in arguments.inputs], svg_relative,
                                      shown_command, arguments.note))
    svg.parent.mkdir(parents=True, exist_ok=True)
    dates = header_facts(inputs)["dates"]
    svg.write_text(render_svg(inputs.cases, copy_bandwidth, "%s (%s)" % (
        arguments.title, dates[0][:10] if dates else datetime.date.today().isoformat())))
    print("benchmarks_to_markdown: wrote %s and %s (%d cases, %d training comparisons)"
          % (output, svg, len(inputs.cases), len(inputs.training)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
