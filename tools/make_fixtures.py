#!/usr/bin/python3
"""Writes tests/fixtures/*.safetensors: PyTorch's answers for cudagrad's ops, to test against.

Run from anywhere with Debian's PyTorch (python3-torch 1.13, python3-torchvision 0.14, CPU):

    /usr/bin/python3 tools/make_fixtures.py

Each file is one case: the inputs and parameters, the output, a random gradient fed back
("grad_output"), and the gradient of every input and parameter ("grad.<name>"); batch norm
cases also hold the running statistics after the step ("updated.<name>"). Everything is
float64 so the C++ tests can hold our float64 path to ~1e-9 and our float32 path (on inputs
rounded to float32) to ~1e-4. The case description (op name, options as strings) is in the
safetensors "__metadata__"; the C++ tests read the options from there.

The output is deterministic: each case seeds torch from its own name (so adding a case leaves
the others unchanged), torch runs single-threaded, and the files are written by the small
safetensors writer below (struct + json; no safetensors package) with sorted keys. Running the
script again rewrites identical bytes; files it wrote for cases no longer listed are deleted
(other generators share the folder: files whose metadata "generator" is not this script's are
left alone). tools/make_optimizer_fixtures.py imports safetensors_bytes from here.
"""

import json
import pathlib
import struct
import sys
import zlib

import torch
import torch.nn.functional as F
from torchvision.models.resnet import Bottleneck

FIXTURE_DIR = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
F64 = torch.float64

# --------------------------------------------------------------------------- safetensors writer

# dtype -> (safetensors code, struct letter of one element)
DTYPE_CODES = {torch.float64: ("F64", "d"), torch.float32: ("F32", "f"), torch.int64: ("I64", "q")}


def safetensors_bytes(tensors, metadata):
    """The bytes of a safetensors file: u64 header length, JSON header padded to 8, data."""
    header = {}
    if metadata:
        header["__metadata__"] = {key: str(metadata[key]) for key in sorted(metadata)}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        code, letter = DTYPE_CODES[tensor.dtype]
        values = tensor.reshape(-1).tolist()
        data = struct.pack("<%d%s" % (len(values), letter), *values)  # "<": little-endian
        header[name] = {"dtype": code, "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


# --------------------------------------------------------------------------- helpers

CASES = []  # (name, function returning (tensors, metadata))


def case(function):
    CASES.append((function.__name__, function))
    return function


def leaf(tensor):
    """A float64 leaf that collects its gradient."""
    return tensor.detach().to(F64).clone().requires_grad_(True)


def randn(*shape, scale=1.0):
    return torch.randn(tuple(shape), dtype=F64) * scale


def distinct_values(*shape):
    """Values in [-2, 2) that are all distinct, even after rounding to float32, so that a
    max-pooling window never holds a tie and the gradient has one right answer."""
    count = 1
    for size in shape:
        count *= size
    return (torch.randperm(count).to(F64) / count * 4.0 - 2.0).reshape(shape)


def finish(op, inputs, output, metadata=None, constants=None):
    """Backpropagates a random gradient and gathers the tensors of one fixture.
    inputs: name -> leaf tensor (gradients recorded as grad.<name>);
    constants: name -> tensor stored as is (labels, running statistics)."""
    grad_output = randn(*output.shape)
    output.backward(grad_output)
    tensors = {name: tensor.detach().clone() for name, tensor in inputs.items()}
    tensors.update({name: tensor.detach().clone() for name, tensor in (constants or {}).items()})
    tensors["output"] = output.detach()
    tensors["grad_output"] = grad_output
    for name, tensor in inputs.items():
        tensors["grad." + name] = tensor.grad.detach().clone()
    return tensors, dict(op=op, **(metadata or {}))


def pair(values):
    return "%d,%d" % tuple(values)


# --------------------------------------------------------------------------- conv2d and linear


def conv2d_case(x_shape, weight_shape, bias, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    fan_in = weight_shape[1] * weight_shape[2] * weight_shape[3]
    inputs = {"input": leaf(randn(*x_shape)), "weight": leaf(randn(*weight_shape, scale=fan_in ** -0.5))}
    if bias:
        inputs["bias"] = leaf(randn(weight_shape[0]))
    output = F.conv2d(inputs["input"], inputs["weight"], inputs.get("bias"), stride, padding, dilation, groups)
    metadata = dict(stride=pair(stride), padding=pair(padding), dilation=pair(dilation), groups=groups,
                    bias="true" if bias else "false")
    return finish("conv2d", inputs, output, metadata)


@case
def conv2d_3x3_pad1():
    return conv2d_case((2, 3, 9, 8), (4, 3, 3, 3), bias=True, padding=(1, 1))


@case
def conv2d_7x7_stride2_pad3():  # the ResNet stem, on a small odd input
    return conv2d_case((2, 3, 15, 16), (5, 3, 7, 7), bias=False, stride=(2, 2), padding=(3, 3))


@case
def conv2d_1x1_stride2():  # the ResNet downsample shortcut
    return conv2d_case((2, 6, 7, 7), (8, 6, 1, 1), bias=False, stride=(2, 2))


@case
def conv2d_groups2_bias():
    return conv2d_case((2, 6, 7, 6), (4, 3, 3, 3), bias=True, padding=(1, 1), groups=2)


@case
def conv2d_dilation2_batch1():
    return conv2d_case((1, 3, 11, 10), (4, 3, 3, 3), bias=True, padding=(2, 2), dilation=(2, 2))


@case
def conv2d_asymmetric():  # every option differs between height and width, to catch swaps
    return conv2d_case((2, 3, 9, 7), (4, 3, 3, 2), bias=False, stride=(2, 1), padding=(1, 0), dilation=(1, 2))


@case
def linear_bias():
    inputs = {"input": leaf(randn(5, 7)), "weight": leaf(randn(3, 7, scale=7 ** -0.5)), "bias": leaf(randn(3))}
    return finish("linear", inputs, F.linear(inputs["input"], inputs["weight"], inputs["bias"]), dict(bias="true"))


@case
def linear_no_bias():
    inputs = {"input": leaf(randn(4, 6)), "weight": leaf(randn(5, 6, scale=6 ** -0.5))}
    return finish("linear", inputs, F.linear(inputs["input"], inputs["weight"]), dict(bias="false"))


# --------------------------------------------------------------------------- batch norm


def batch_norm_case(x_shape, training, momentum=0.1, eps=1e-5):
    channels = x_shape[1]
    module = torch.nn.BatchNorm2d(channels, eps=eps, momentum=momentum).to(F64)
    with torch.no_grad():
        module.weight.copy_(randn(channels) * 0.5 + 1.0)
        module.bias.copy_(randn(channels) * 0.5)
        module.running_mean.copy_(randn(channels) * 0.3)
        module.running_var.copy_(torch.rand(channels, dtype=F64) + 0.5)
        module.num_batches_tracked.fill_(3)
    module.train(training)
    before = {name: buffer.clone() for name, buffer in module.named_buffers()}
    x = leaf(randn(*x_shape) * 2.0 + 0.5)
    inputs = {"input": x, "weight": module.weight, "bias": module.bias}
    output = module(x)
    constants = dict(before)
    constants.update({"updated." + name: buffer for name, buffer in module.named_buffers()})
    metadata = dict(training="true" if training else "false", momentum=repr(momentum), eps=repr(eps))
    return finish("batch_norm2d", inputs, output, metadata, constants)


@case
def batch_norm2d_train():
    return batch_norm_case((4, 3, 5, 5), training=True)


@case
def batch_norm2d_train_batch1_momentum():  # N = 1, non-default momentum and eps
    return batch_norm_case((1, 5, 3, 4), training=True, momentum=0.25, eps=1e-3)


@case
def batch_norm2d_eval():
    return batch_norm_case((3, 4, 5, 3), training=False)


# --------------------------------------------------------------------------- pooling


def pool_metadata(kernel, stride, padding, **extra):
    return dict(kernel=pair(kernel), stride=pair(stride), padding=pair(padding), **extra)


@case
def max_pool2d_3x3_stride2_pad1():
    x = leaf(distinct_values(2, 3, 9, 10))
    output = F.max_pool2d(x, 3, 2, 1)
    return finish("max_pool2d", {"input": x}, output, pool_metadata((3, 3), (2, 2), (1, 1)))


@case
def max_pool2d_2x2_stride2_odd():  # the last row and column fall outside every window
    x = leaf(distinct_values(2, 2, 7, 6))
    output = F.max_pool2d(x, 2, 2)
    return finish("max_pool2d", {"input": x}, output, pool_metadata((2, 2), (2, 2), (0, 0)))


def avg_pool_case(count_include_pad):
    x = leaf(randn(2, 3, 9, 10))
    output = F.avg_pool2d(x, 3, 2, 1, count_include_pad=count_include_pad)
    metadata = pool_metadata((3, 3), (2, 2), (1, 1), count_include_pad="true" if count_include_pad else "false")
    return finish("avg_pool2d", {"input": x}, output, metadata)


@case
def avg_pool2d_3x3_stride2_pad1_include_pad():
    return avg_pool_case(True)


@case
def avg_pool2d_3x3_stride2_pad1_exclude_pad():
    return avg_pool_case(False)


def adaptive_case(x_shape, output_size):
    x = leaf(randn(*x_shape))
    output = F.adaptive_avg_pool2d(x, output_size)
    return finish("adaptive_avg_pool2d", {"input": x}, output, dict(output_size=pair(output_size)))


@case
def adaptive_avg_pool2d_7_to_3():  # overlapping windows [0,3) [2,5) [4,7)
    return adaptive_case((2, 3, 7, 7), (3, 3))


@case
def adaptive_avg_pool2d_7x5_to_3x2():
    return adaptive_case((2, 3, 7, 5), (3, 2))


@case
def adaptive_avg_pool2d_4x5_to_6x3():  # more outputs than inputs along the height
    return adaptive_case((1, 2, 4, 5), (6, 3))


@case
def global_avg_pool2d():
    x = leaf(randn(2, 5, 4, 3))
    return finish("global_avg_pool2d", {"input": x}, F.adaptive_avg_pool2d(x, 1))


# --------------------------------------------------------------------------- elementwise, shape, reductions


@case
def relu():
    x = leaf(randn(2, 3, 4, 5))
    return finish("relu", {"input": x}, F.relu(x))


@case
def add():
    inputs = {"a": leaf(randn(2, 3, 4, 5)), "b": leaf(randn(2, 3, 4, 5))}
    return finish("add", inputs, inputs["a"] + inputs["b"])


@case
def flatten():
    x = leaf(randn(2, 3, 4, 5))
    return finish("flatten", {"input": x}, torch.flatten(x, 1), dict(start_dim=1))


@case
def sum_all():
    x = leaf(randn(3, 4, 5))
    return finish("sum", {"input": x}, x.sum())


@case
def mean_all():
    x = leaf(randn(3, 4, 5))
    return finish("mean", {"input": x}, x.mean())


@case
def sum_dim1():
    x = leaf(randn(3, 4, 5))
    return finish("sum_dim", {"input": x}, x.sum(1), dict(dim=1, keepdim="false"))


@case
def sum_dim_last_keepdim():
    x = leaf(randn(3, 4, 5))
    return finish("sum_dim", {"input": x}, x.sum(-1, keepdim=True), dict(dim=-1, keepdim="true"))


def softmax_case(op, shape, dim):
    x = leaf(randn(*shape, scale=3.0))
    function = F.softmax if op == "softmax" else F.log_softmax
    return finish(op, {"input": x}, function(x, dim), dict(dim=dim))


@case
def softmax_dim1():
    return softmax_case("softmax", (4, 7), 1)


@case
def softmax_3d_dim1():
    return softmax_case("softmax", (2, 5, 3), 1)


@case
def log_softmax_dim1():
    return softmax_case("log_softmax", (4, 7), 1)


@case
def log_softmax_3d_dim_last():
    return softmax_case("log_softmax", (2, 3, 5), -1)


def cross_entropy_case(label_smoothing):
    logits = leaf(randn(6, 5, scale=2.0))
    labels = torch.randint(0, 5, (6,), dtype=torch.int64)
    output = F.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    return finish("cross_entropy", {"logits": logits}, output, dict(label_smoothing=repr(label_smoothing)),
                  {"labels": labels})


@case
def cross_entropy():
    return cross_entropy_case(0.0)


@case
def cross_entropy_label_smoothing():
    return cross_entropy_case(0.1)


# --------------------------------------------------------------------------- ResNet bottleneck


def bottleneck_case(training):
    """torchvision's ResNet v1.5 Bottleneck (stride on the 3x3 conv) with a downsample shortcut."""
    inplanes, planes, stride = 8, 4, 2
    downsample = torch.nn.Sequential(
        torch.nn.Conv2d(inplanes, planes * Bottleneck.expansion, 1, stride=stride, bias=False),
        torch.nn.BatchNorm2d(planes * Bottleneck.expansion))
    block = Bottleneck(inplanes, planes, stride=stride, downsample=downsample).to(F64)
    with torch.no_grad():  # explicit values, independent of torch's default initialisers
        for name, parameter in block.named_parameters():
            if parameter.dim() == 4:
                fan_in = parameter.shape[1] * parameter.shape[2] * parameter.shape[3]
                parameter.copy_(randn(*parameter.shape, scale=(2.0 / fan_in) ** 0.5))
            elif name.endswith("weight"):
                parameter.copy_(randn(*parameter.shape) * 0.3 + 1.0)
            else:
                parameter.copy_(randn(*parameter.shape) * 0.3)
        for name, buffer in block.named_buffers():
            if name.endswith("running_mean"):
                buffer.copy_(randn(*buffer.shape) * 0.3)
            elif name.endswith("running_var"):
                buffer.copy_(torch.rand(*buffer.shape, dtype=F64) + 0.5)
            else:  # num_batches_tracked
                buffer.fill_(7)
    block.train(training)
    before = {name: buffer.clone() for name, buffer in block.named_buffers()}
    x = leaf(randn(2, inplanes, 7, 7))
    inputs = {"input": x}
    inputs.update(dict(block.named_parameters()))
    output = block(x)
    constants = dict(before)
    constants.update({"updated." + name: buffer for name, buffer in block.named_buffers()})
    metadata = dict(training="true" if training else "false", inplanes=inplanes, planes=planes, stride=stride,
                    momentum="0.1", eps="1e-05",
                    description="torchvision.models.resnet.Bottleneck(8, 4, stride=2, downsample=conv1x1/2 + bn)")
    return finish("bottleneck", inputs, output, metadata, constants)


@case
def bottleneck_train():
    return bottleneck_case(True)


@case
def bottleneck_eval():
    return bottleneck_case(False)


# --------------------------------------------------------------------------- main


GENERATOR_PREFIX = "tools/make_fixtures.py,"


def written_by_this_script(path):
    data = path.read_bytes()
    try:
        (length,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + length])
        return header.get("__metadata__", {}).get("generator", "").startswith(GENERATOR_PREFIX)
    except (struct.error, ValueError, AttributeError):
        return False


def main():
    torch.set_num_threads(1)  # one summation order, so reruns produce identical bytes
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    written = set()
    total = 0
    for name, function in CASES:
        torch.manual_seed(zlib.crc32(name.encode()))
        tensors, metadata = function()
        metadata["case"] = name
        metadata["generator"] = "%s torch %s" % (GENERATOR_PREFIX, torch.__version__.split("+")[0])
        data = safetensors_bytes(tensors, metadata)
        path = FIXTURE_DIR / (name + ".safetensors")
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        written.add(path.name)
        total += len(data)
        print("%-45s %7d bytes  %s" % (path.name, len(data), ", ".join(sorted(tensors))))
    # Other scripts write fixtures into the same folder: delete only files this one wrote.
    for stale in FIXTURE_DIR.glob("*.safetensors"):
        if stale.name not in written and written_by_this_script(stale):
            stale.unlink()
            print("removed stale", stale.name)
    print("%d fixtures, %d bytes in %s" % (len(written), total, FIXTURE_DIR))
    if total > 2 * 1024 * 1024:
        sys.exit("fixtures exceed 2 MB; shrink the cases")


if __name__ == "__main__":
    main()
