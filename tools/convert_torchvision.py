#!/usr/bin/python3
"""Converts ResNet weights between torchvision and cudagrad, in both directions.

    to-cudagrad SOURCE OUTPUT.safetensors
        SOURCE is a torchvision ResNet state_dict saved with torch.save (.pth/.pt; a checkpoint
        dict holding it under "state_dict", "model" or "model_state_dict", or a pickled model,
        also work; DataParallel's "module." prefix is dropped), or a torchvision model name
        (resnet18, resnet34, resnet50, resnet101, resnet152), built with torchvision's own random
        initialisation from --seed and --num-classes.
    to-torchvision CHECKPOINT.safetensors OUTPUT.pth
        A cudagrad checkpoint or weights file (optimiser state is dropped) to a state_dict that
        torchvision.models.resnetNN(num_classes=...).load_state_dict() accepts.

The cudagrad file is the safetensors layout cudagrad's checkpoints use (include/cudagrad/checkpoint.hpp):
tensor names exactly as torchvision's ("layer1.0.conv1.weight", "bn1.running_mean", "fc.bias"),
float32 values and int64 num_batches_tracked, and metadata "format" = "cudagrad.checkpoint.v1"
plus the "config.*" entries `resnet50 eval/predict/infer` read: depth, dataset ("folder" for
3-channel models, "fashion-mnist" for 1-channel ones), image-size, mean and std (comma-separated),
and optionally class-names ('|'-separated).

Both directions check the result by loading it into a torchvision model of the detected depth
(adapted when the stem differs from torchvision's: 1-channel input or cudagrad's small 3x3 stem),
so a file that is not a ResNet fails here with the offending tensor named, not later.

Files are read by the plain reader below (no safetensors package) and written with numpy's
tobytes (a ResNet-152 is 240 MB; tools/make_fixtures.py's struct-based safetensors_bytes, which
writes the same bytes, takes tens of seconds for that and is the fallback when numpy is missing).
Run with Debian's PyTorch: /usr/bin/python3 tools/convert_torchvision.py --help
"""

import argparse
import collections
import json
import os
import pathlib
import struct
import sys

FORMAT = "cudagrad.checkpoint.v1"
MODEL_NAMES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
IMAGENET_MEAN = "0.485,0.456,0.406"
IMAGENET_STD = "0.229,0.224,0.225"
FASHION_MNIST_MEAN, FASHION_MNIST_STD = "0.286", "0.353"
LAYER3_BLOCKS = {18: 2, 34: 6, 50: 6, 101: 23, 152: 36}  # blocks in layer3 tell the depths apart


class ConversionError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


def import_torch():
    try:
        import torch
        import torchvision
    except ImportError as error:
        raise ConversionError("PyTorch and torchvision are needed (%s); tools/install_deps.sh installs "
                              "Debian's python3-torch and python3-torchvision" % error)
    return torch, torchvision


# --------------------------------------------------------------------------- safetensors I/O

# safetensors dtype code -> (torch dtype name, bytes per element)
SAFETENSORS_DTYPES = {"F32": ("float32", 4), "F64": ("float64", 8), "I64": ("int64", 8)}


def read_safetensors(path):
    """Returns ({name: torch.Tensor}, metadata) of a safetensors file, checking its structure."""
    torch, _ = import_torch()
    path = pathlib.Path(path)
    try:
        data = bytearray(path.read_bytes())
    except OSError as error:
        raise ConversionError("cannot read %s: %s" % (path, error.strerror or error))
    if len(data) < 8:
        raise ConversionError("%s: %d bytes is too short for a safetensors file" % (path, len(data)))
    (header_length,) = struct.unpack("<Q", data[:8])
    if 8 + header_length > len(data):
        raise ConversionError("%s: header length %d runs past the end of the file (%d bytes); truncated?"
                              % (path, header_length, len(data)))
    try:
        header = json.loads(data[8:8 + header_length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ConversionError("%s: the header is not valid JSON: %s" % (path, error))
    if not isinstance(header, dict):
        raise ConversionError("%s: the header is not a JSON object" % path)
    metadata = header.pop("__metadata__", {}) or {}
    data_start = 8 + header_length
    data_size = len(data) - data_start
    tensors = {}
    for name, entry in header.items():
        try:
            code, shape, (begin, end) = entry["dtype"], [int(size) for size in entry["shape"]], entry["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise ConversionError("%s: tensor '%s' has a malformed header entry %r" % (path, name, entry))
        if code not in SAFETENSORS_DTYPES:
            raise ConversionError("%s: tensor '%s' has dtype %s; supported: %s"
                                  % (path, name, code, ", ".join(SAFETENSORS_DTYPES)))
        dtype_name, element_size = SAFETENSORS_DTYPES[code]
        count = 1
        for size in shape:
            count *= size
        if not 0 <= begin <= end <= data_size or end - begin != count * element_size:
            raise ConversionError("%s: tensor '%s' (%s %s) has data offsets [%d, %d] that do not fit its shape or the "
                                  "%d data bytes" % (path, name, code, shape, begin, end, data_size))
        dtype = getattr(torch, dtype_name)
        if count == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:  # a fresh, aligned copy that owns its memory
            chunk = bytearray(data[data_start + begin:data_start + end])
            tensors[name] = torch.frombuffer(chunk, dtype=dtype).reshape(shape)
    return tensors, {str(key): str(value) for key, value in metadata.items()}


def safetensors_file_bytes(tensors, metadata):
    """The bytes tools/make_fixtures.py's safetensors_bytes writes (sorted names, compact JSON
    padded with spaces to 8 bytes), built with numpy for speed."""
    try:
        import numpy  # noqa: F401  (Tensor.numpy needs it)
    except ImportError:
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
        from make_fixtures import safetensors_bytes
        return safetensors_bytes(tensors, metadata)
    torch, _ = import_torch()
    codes = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64"}
    header = {}
    if metadata:
        header["__metadata__"] = {key: str(metadata[key]) for key in sorted(metadata)}
    chunks, offset = [], 0
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        if tensor.dtype not in codes:
            raise ConversionError("tensor '%s' has dtype %s; cudagrad files hold float32, float64 and int64"
                                  % (name, tensor.dtype))
        chunk = tensor.numpy().astype(tensor.numpy().dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": codes[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(chunk)]}
        chunks.append(chunk)
        offset += len(chunk)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def write_safetensors(path, tensors, metadata=None):
    """Writes atomically: a temporary file renamed over `path`, so a failure leaves no half file."""
    data = safetensors_file_bytes(tensors, metadata or {})
    path = pathlib.Path(path)
    temporary = path.with_name("%s.tmp.%d" % (path.name, os.getpid()))
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise ConversionError("cannot write %s: %s" % (path, error.strerror or error))


# --------------------------------------------------------------------------- ResNet structure

def describe_resnet(state_dict, source):
    """(depth, num_classes, in_channels, small_stem) of a ResNet state_dict, or a ConversionError."""
    for required in ("conv1.weight", "fc.weight", "layer3.0.conv1.weight"):
        if required not in state_dict:
            raise ConversionError("%s: no tensor '%s'; is this a torchvision ResNet state_dict? (first names: %s)"
                                  % (source, required, ", ".join(list(state_dict)[:5])))
    blocks = 0
    while "layer3.%d.conv1.weight" % blocks in state_dict:
        blocks += 1
    bottleneck = "layer1.0.conv3.weight" in state_dict
    depths = [depth for depth, count in LAYER3_BLOCKS.items() if count == blocks and (depth >= 50) == bottleneck]
    if not depths:
        raise ConversionError("%s: %d %s blocks in layer3 match no ResNet depth (18, 34, 50, 101, 152)"
                              % (source, blocks, "bottleneck" if bottleneck else "basic"))
    conv1 = state_dict["conv1.weight"]
    return depths[0], int(state_dict["fc.weight"].shape[0]), int(conv1.shape[1]), int(conv1.shape[2]) == 3


def torchvision_resnet(depth, num_classes, in_channels=3, small_stem=False):
    """torchvision's ResNet, with the stem swapped when the weights come from a non-standard one."""
    torch, torchvision = import_torch()
    model = getattr(torchvision.models, "resnet%d" % depth)(num_classes=num_classes)
    if small_stem or in_channels != 3:
        kernel, stride = (3, 1) if small_stem else (7, 2)
        model.conv1 = torch.nn.Conv2d(in_channels, 64, kernel, stride, kernel // 2, bias=False)
        if small_stem:
            model.maxpool = torch.nn.Identity()
    return model


def check_loads_into_torchvision(state_dict, source):
    depth, num_classes, in_channels, small_stem = describe_resnet(state_dict, source)
    model = torchvision_resnet(depth, num_classes, in_channels, small_stem)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise ConversionError("%s does not load into torchvision's resnet%d(num_classes=%d): %s"
                              % (source, depth, num_classes, str(error).strip().replace("\n", " ")))
    return depth, num_classes, in_channels, small_stem


# --------------------------------------------------------------------------- torchvision -> cudagrad

def load_torchvision_source(source, num_classes=1000, seed=0):
    """A state_dict from a model name (random init) or a file saved with torch.save."""
    torch, torchvision = import_torch()
    if source in MODEL_NAMES:
        torch.manual_seed(seed)
        return getattr(torchvision.models, source)(num_classes=num_classes).state_dict()
    path = pathlib.Path(source)
    if not path.is_file():
        raise ConversionError("%s is neither a file nor a model name (%s)" % (source, ", ".join(MODEL_NAMES)))
    try:
        loaded = torch.load(str(path), map_location="cpu")
    except Exception as error:  # torch.load raises many kinds (pickle, zip, EOF)
        raise ConversionError("%s is not a file torch.load reads: %s" % (path, error))
    if isinstance(loaded, torch.nn.Module):
        loaded = loaded.state_dict()
    if isinstance(loaded, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(loaded.get(key), dict):
                loaded = loaded[key]
                break
    if not isinstance(loaded, dict) or not all(isinstance(value, torch.Tensor) for value in loaded.values()):
        raise ConversionError("%s holds no state_dict (a dict of tensors); got %s" % (path, type(loaded).__name__))
    return collections.OrderedDict((name[7:] if name.startswith("module.") else name, value)
                                   for name, value in loaded.items())


def cudagrad_tensors(state_dict):
    """The state_dict with cudagrad's element types: float32 values, int64 counters."""
    torch, _ = import_torch()
    converted = {}
    for name, tensor in state_dict.items():
        if name.endswith("num_batches_tracked"):
            converted[name] = tensor.detach().to(torch.int64).reshape(())
        elif tensor.is_floating_point():
            converted[name] = tensor.detach().to(torch.float32)
        else:
            raise ConversionError("tensor '%s' has dtype %s; expected floating point" % (name, tensor.dtype))
    return converted


def cudagrad_metadata(state_dict, source, class_names=None, image_size=None, mean=None, std=None):
    depth, num_classes, in_channels, small_stem = describe_resnet(state_dict, source)
    if class_names is not None and len(class_names) != num_classes:
        raise ConversionError("%d class names given for a model with %d classes" % (len(class_names), num_classes))
    if class_names and any("|" in name for name in class_names):
        raise ConversionError("class names may not contain '|' (the separator)")
    grey = in_channels == 1
    metadata = {
        "format": FORMAT,
        "source": str(source),
        "config.depth": str(depth),
        "config.dataset": "fashion-mnist" if grey else "folder",
        "config.image-size": str(image_size or (28 if grey else 224)),
        "config.mean": mean or (FASHION_MNIST_MEAN if grey else IMAGENET_MEAN),
        "config.std": std or (FASHION_MNIST_STD if grey else IMAGENET_STD),
        "config.stem": "small" if small_stem else "standard",
    }
    if class_names:
        metadata["config.class-names"] = "|".join(class_names)
    return metadata


def save_cudagrad_weights(state_dict, output, source="state_dict", **config):
    """Checks the state_dict is a ResNet torchvision loads, then writes it in cudagrad's layout."""
    check_loads_into_torchvision(state_dict, source)
    write_safetensors(output, cudagrad_tensors(state_dict), cudagrad_metadata(state_dict, source, **config))


# --------------------------------------------------------------------------- cudagrad -> torchvision

def load_cudagrad_state_dict(path):
    """(state_dict for torchvision, metadata) from a cudagrad checkpoint; optimiser state dropped."""
    torch, _ = import_torch()
    tensors, metadata = read_safetensors(path)
    if metadata.get("format", FORMAT) != FORMAT:
        raise ConversionError("%s has format '%s', expected %s" % (path, metadata["format"], FORMAT))
    state_dict = collections.OrderedDict()
    for name in sorted(tensors):
        if name.startswith("optimizer."):
            continue
        tensor = tensors[name]
        state_dict[name] = tensor.to(torch.int64) if name.endswith("num_batches_tracked") else tensor.to(torch.float32)
    return state_dict, metadata


def save_torchvision_state_dict(source, output):
    torch, _ = import_torch()
    state_dict, metadata = load_cudagrad_state_dict(source)
    depth, num_classes, in_channels, small_stem = check_loads_into_torchvision(state_dict, source)
    try:
        torch.save(state_dict, str(output))
    except OSError as error:
        raise ConversionError("cannot write %s: %s" % (output, error.strerror or error))
    return depth, num_classes, in_channels, small_stem, metadata


# --------------------------------------------------------------------------- command line

def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Convert ResNet weights between torchvision (.pth state_dict) and cudagrad (safetensors).",
        epilog="examples:\n"
               "  convert_torchvision.py to-cudagrad resnet50_imagenet.pth resnet50.safetensors --class-names-file names.txt\n"
               "  convert_torchvision.py to-cudagrad resnet50 random50.safetensors --num-classes 10 --seed 1\n"
               "  convert_torchvision.py to-torchvision runs/resnet50/best.safetensors best.pth",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    forward = commands.add_parser("to-cudagrad", help="torchvision state_dict or model name -> cudagrad safetensors")
    forward.add_argument("source", help=".pth/.pt file, or a model name: " + ", ".join(MODEL_NAMES))
    forward.add_argument("output", help="the .safetensors file to write")
    forward.add_argument("--num-classes", type=int, default=1000, help="classes, for a model name (default 1000)")
    forward.add_argument("--seed", type=int, default=0, help="torch seed for a model name's random init (default 0)")
    forward.add_argument("--class-names", help="class names separated by '|', in class order")
    forward.add_argument("--class-names-file", help="a text file with one class name per line")
    forward.add_argument("--image-size", type=int, help="input size the model expects (default 224; 28 for 1 channel)")
    forward.add_argument("--mean", help="normalisation mean, comma-separated (default ImageNet's)")
    forward.add_argument("--std", help="normalisation std, comma-separated (default ImageNet's)")
    backward = commands.add_parser("to-torchvision", help="cudagrad checkpoint -> torchvision state_dict (.pth)")
    backward.add_argument("source", help="a cudagrad .safetensors checkpoint or weights file")
    backward.add_argument("output", help="the .pth file to write (torch.save of the state_dict)")
    arguments = parser.parse_args(argv)

    try:
        if arguments.command == "to-cudagrad":
            if arguments.num_classes < 1:
                raise ConversionError("--num-classes must be positive, got %d" % arguments.num_classes)
            class_names = None
            if arguments.class_names and arguments.class_names_file:
                raise ConversionError("give --class-names or --class-names-file, not both")
            if arguments.class_names:
                class_names = arguments.class_names.split("|")
            if arguments.class_names_file:
                try:
                    lines = pathlib.Path(arguments.class_names_file).read_text().splitlines()
                except OSError as error:
                    raise ConversionError("cannot read %s: %s" % (arguments.class_names_file, error.strerror))
                class_names = [line.strip() for line in lines if line.strip()]
            for flag in ("mean", "std"):
                value = getattr(arguments, flag)
                if value is not None:
                    try:
                        [float(number) for number in value.split(",")]
                    except ValueError:
                        raise ConversionError("--%s must be comma-separated numbers, got '%s'" % (flag, value))
            state_dict = load_torchvision_source(arguments.source, arguments.num_classes, arguments.seed)
            save_cudagrad_weights(state_dict, arguments.output, source=arguments.source, class_names=class_names,
                                  image_size=arguments.image_size, mean=arguments.mean, std=arguments.std)
            depth, num_classes, in_channels, small_stem = describe_resnet(state_dict, arguments.source)
            print("wrote %s: ResNet-%d, %d classes, %d tensors" % (arguments.output, depth, num_classes, len(state_dict)))
        else:
            depth, num_classes, in_channels, small_stem, _ = save_torchvision_state_dict(arguments.source, arguments.output)
            print("wrote %s: load with torchvision.models.resnet%d(num_classes=%d).load_state_dict(torch.load(%r))"
                  % (arguments.output, depth, num_classes, arguments.output))
            if small_stem or in_channels != 3:
                kernel, stride = (3, 1) if small_stem else (7, 2)
                print("note: this model has a non-standard stem; first set model.conv1 = torch.nn.Conv2d(%d, 64, %d, %d, "
                      "%d, bias=False)%s" % (in_channels, kernel, stride, kernel // 2,
                                            " and model.maxpool = torch.nn.Identity()" if small_stem else ""))
    except ConversionError as error:
        print("convert_torchvision: error: %s" % error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
