#!/usr/bin/env python3
"""Tests for tools/benchmarks_to_markdown.py on a hand-made GPU-like sample (tests/data/benchmark_sample.json)
and a hand-made training comparison. Standard library only; run directly or from ctest."""

import json
import pathlib
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ElementTree

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import benchmarks_to_markdown as tool  # noqa: E402

SAMPLE = ROOT / "tests" / "data" / "benchmark_sample.json"

TRAINING = {
    "kind": "cudagrad_train_vs_pytorch",
    "context": {"date": "2026-11-27T09:05:00Z", "device": "cuda", "gpu_name": "NVIDIA H100 80GB HBM3 (sample)",
                "commit": "sample0", "image_size": 224, "classes": 1000, "stem": "standard", "steps": 5, "warmup": 2,
                "rounds": 1, "cudnn_benchmark": True, "torch_version": "2.11.0", "torchvision_version": "0.26.0",
                "cudnn_version": 91900},
    "results": [
        {"batch": 128, "precision": "fp32", "status": "ok", "message": "", "ratio": 0.75,
         "cudagrad": {"status": "ok", "images_per_second": 708.0, "step_ms": 180.8, "forward_ms": 60.1,
                      "backward_ms": 110.2, "optimizer_ms": 9.0, "peak_memory_bytes": 17 * 2**30},
         "pytorch": {"status": "ok", "images_per_second": 944.0, "step_ms": 135.6, "forward_ms": 45.0,
                     "backward_ms": 85.0, "optimizer_ms": 4.0, "peak_memory_bytes": 15.8 * 2**30}},
        {"batch": 128, "precision": "tf32", "status": "failed", "ratio": None,
         "message": "cudagrad failed: conv2d: out of memory | really",
         "cudagrad": {"status": "failed", "message": "conv2d: out of memory"},
         "pytorch": {"status": "ok", "images_per_second": 1797.0, "step_ms": 71.2}},
    ],
}


def run_tool(directory, inputs):
    output = pathlib.Path(directory) / "benchmarks.md"
    status = tool.main([str(path) for path in inputs] + ["--output", str(output)])
    return status, output.read_text(), output.with_suffix(".svg").read_text()


class CaseNames(unittest.TestCase):
    def test_gpu_case_with_batch(self):
        case = tool.parse_case_name("batch_norm_forward/layer1_256x56/b128/cudnn/manual_time", False)
        self.assertEqual((case.op, case.shape, case.batch, case.implementation, case.gpu),
                         ("batch_norm_forward", "layer1_256x56", 128, "cudnn", True))
        self.assertTrue(case.is_vendor)
        self.assertEqual(tool.op_family("conv2d_forward_tf32"), ("conv2d", "forward tf32"))

    def test_gpu_case_without_batch(self):
        case = tool.parse_case_name("gemm_tf32/4096/tensor_core/manual_time", False)
        self.assertEqual((case.op, case.shape, case.batch, case.implementation), ("gemm_tf32", "4096", None,
                                                                                   "tensor_core"))
        self.assertFalse(case.is_vendor)

    def test_cpu_case(self):
        case = tool.parse_case_name("conv2d_forward/conv1_7x7s2_3to64_224/real_time", False)
        self.assertEqual((case.op, case.shape, case.implementation, case.gpu),
                         ("conv2d_forward", "conv1_7x7s2_3to64_224", "cpu", False))


class Document(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.TemporaryDirectory()
        training = pathlib.Path(cls.directory.name) / "train.json"
        training.write_text(json.dumps(TRAINING))
        cls.status, cls.markdown, cls.svg = run_tool(cls.directory.name, [SAMPLE, training])

    @classmethod
    def tearDownClass(cls):
        cls.directory.cleanup()

    def test_header(self):
        self.assertEqual(self.status, 0)
        self.assertIn("- GPU: NVIDIA H100 80GB HBM3 (hand-made sample)", self.markdown)
        self.assertIn("sample0", self.markdown)
        self.assertIn("2026-11-27T09:00:00+00:00", self.markdown)

    def test_tables(self):
        self.assertIn("#### `conv2d_forward`", self.markdown)
        self.assertIn("| shape | batch | cudnn (vendor) | implicit_gemm | direct |", self.markdown)
        self.assertIn("| `layer1_3x3_64to64_56` | 128 | 700 us · 42.3 TFLOP/s | 1.4 ms · 21.1 TFLOP/s · **0.50x** vendor |",
                      self.markdown)
        self.assertIn("| `layer1_256x56` | 128 | 513 us · 2405 GB/s | 456 us · 2705 GB/s · **1.12x** vendor |",
                      self.markdown)
        # No batch in the GEMM names: no batch column. Aggregates: the median is shown.
        self.assertIn("| shape | cublas (vendor) | naive | warp_tiled |", self.markdown)
        self.assertIn("2.69 ms · 51.1 TFLOP/s", self.markdown)

    def test_failed_check_shows_no_number(self):
        self.assertIn("**FAILED**: correctness check failed at element 17", self.markdown)
        self.assertNotIn("123456", self.markdown)
        self.assertNotIn("123 ms", self.markdown)

    def test_all_skipped_family(self):
        self.assertIn("### max_pool\n\nNot yet measured on a GPU: 2 cases (`max_pool_forward`) skipped: no usable GPU",
                      self.markdown)

    def test_training(self):
        self.assertIn("| 128 | fp32 | 708.0 | 944.0 | **0.75x** | 180.80 (60.10 / 110.20 / 9.00) |", self.markdown)
        self.assertIn("17408 MiB / 16179 MiB", self.markdown)
        self.assertIn("| 128 | tf32 | FAILED | | | cudagrad failed: conv2d: out of memory \\| really | | |", self.markdown)
        self.assertNotIn("GPU training: not yet measured", self.markdown)

    def test_svg(self):
        root = ElementTree.fromstring(self.svg)
        namespace = "{http://www.w3.org/2000/svg}"
        bars = {rect.find(namespace + "title").text.split(":")[0]: float(rect.get("width"))
                for rect in root.iter(namespace + "rect") if rect.get("class") == "bar"}
        # Compute-bound: implicit_gemm at 50% of cuDNN (geometric mean over two shapes), warp_tiled at 90%
        # of cuBLAS; the vendor itself is the 100% line, not a bar.
        self.assertAlmostEqual(bars["conv2d_forward · implicit_gemm"], bars["gemm_fp32 · warp_tiled"] * 50 / 90, places=0)
        self.assertNotIn("conv2d_forward · cudnn", bars)
        self.assertIn("gemm_fp32 · naive", bars)
        self.assertIn("gemm_fp32 · warp_tiled", bars)
        # Memory-bound: batch norm as a share of the 3002 GB/s copy bandwidth; the failed and skipped cases have none.
        self.assertIn("batch_norm_forward · cuda", bars)
        self.assertNotIn("conv2d_forward · direct", bars)
        self.assertFalse(any(label.startswith("max_pool") for label in bars))
        self.assertIn("90%", self.svg)  # 2705 / 3002


class NoGpu(unittest.TestCase):
    def test_only_skipped_gpu_cases(self):
        document = json.loads(SAMPLE.read_text())
        for entry in document["benchmarks"]:
            entry.update(error_occurred=True, error_message="skipped: no usable GPU on this machine (GPU case)")
        document["context"].pop("gpu_name")
        with tempfile.TemporaryDirectory() as directory:
            path = pathlib.Path(directory) / "skipped.json"
            path.write_text(json.dumps(document))
            status, markdown, svg = run_tool(directory, [path])
        self.assertEqual(status, 0)
        self.assertIn("Not yet measured on a GPU: every GPU case in the inputs was skipped", markdown)
        self.assertIn("GPU training: not yet measured on a GPU.", markdown)
        self.assertNotIn("TFLOP/s ·", markdown)
        self.assertIn("Not yet measured on a GPU", svg)
        ElementTree.fromstring(svg)

    def test_file_cut_short(self):
        # Google Benchmark writes its JSON as it goes; a binary killed by its time limit leaves the
        # cases it finished, which are shown, and the file is marked as cut short.
        text = json.dumps(json.loads(SAMPLE.read_text()), indent=2)
        cut = text.index('"batch_norm_forward/layer1_256x56/b128/cuda/manual_time"') + 20
        with tempfile.TemporaryDirectory() as directory:
            path = pathlib.Path(directory) / "cut.json"
            path.write_text(text[:cut])
            status, markdown, _ = run_tool(directory, [path])
        self.assertEqual(status, 0)
        self.assertIn("`cut.json` (cut short", markdown)
        self.assertIn("513 us · 2405 GB/s", markdown)
        self.assertNotIn("2705 GB/s", markdown)

    def test_unknown_input(self):
        with tempfile.TemporaryDirectory() as directory:
            path = pathlib.Path(directory) / "other.json"
            path.write_text("{\"something\": 1}")
            self.assertEqual(tool.main([str(path), "--output", str(pathlib.Path(directory) / "out.md")]), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
