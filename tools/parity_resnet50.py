#!/usr/bin/python3
"""ResNet-50 parity with torchvision: the same weights and input give the same logits, loss,
gradients, batch-norm statistics and SGD step in cudagrad as in PyTorch.

    /usr/bin/python3 tools/parity_resnet50.py --check-binary build/tests/parity/resnet50_parity_check \
        --infer-binary build/examples/resnet50/resnet50 --work-dir /tmp/parity

ctest runs it as `resnet50_parity` (tests/parity/CMakeLists.txt). What it does:
  1. builds torchvision's resnet50(num_classes=10) with its own initialisation, then randomises
     every batch norm's weight, bias, running mean and running variance, so that eval mode
     differs from train mode and a swapped or ignored parameter shows;
  2. writes the weights with tools/convert_torchvision.py (and reads them back with it: the
     same tensors bit for bit) and an input (2, 3, 64, 64) with labels (tools/make_fixtures.py's
     safetensors_bytes, which must write the same bytes as the converter's own writer);
  3. computes PyTorch's answers twice, in float32 and in float64 from the same (float32) values:
     in eval mode and then in train mode, the logits, the cross-entropy loss (label smoothing
     0.1) and every parameter's gradient; the batch-norm buffers after the train-mode pass; then
     one SGD step from the train-mode gradients (lr 0.1,
     momentum 0.9, Nesterov, weight decay 1e-4 on conv and linear weights and none on batch-norm
     parameters and biases, as `resnet50 train` groups them) and the new weights;
  4. runs `resnet50 infer` on the weights and input and compares its logits with PyTorch's;
  5. runs the C++ check program (tests/parity/resnet50_parity_check.cpp), which repeats step 3
     with cudagrad in float32 and float64 and compares everything (its output explains the
     tolerances; docs/parity.md justifies them).
Exits 0 when everything matches, 1 otherwise. The big files are removed on success and kept on
failure (or with --keep) for a closer look.
"""

import argparse
import copy
import os
import pathlib
import subprocess
import sys
import time

TOOLS = pathlib.Path(__file__).resolve().parent
NUM_CLASSES = 10
INPUT_SHAPE = (2, 3, 64, 64)
LABEL_SMOOTHING = 0.1
SGD_SETTINGS = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": True}
INFER_TOLERANCE = 1e-4  # max |ours - torch| / max |torch| over the logits, float32 (the acceptance test)


def fail(message):
    print("resnet50_parity: FAIL: " + message, flush=True)
    sys.exit(1)


def randomise_batch_norms(model, generator, torch):
    """Batch-norm parameters and statistics far from the identity (weight 1, bias 0, mean 0,
    variance 1), so eval mode really uses the running statistics and the affine parameters."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                channels = module.num_features
                module.weight.copy_(0.5 + torch.rand(channels, generator=generator))
                module.bias.copy_(0.2 * torch.randn(channels, generator=generator))
                module.running_mean.copy_(0.2 * torch.randn(channels, generator=generator))
                module.running_var.copy_(0.5 + 1.5 * torch.rand(channels, generator=generator))
                module.num_batches_tracked.fill_(int(torch.randint(1, 100, (1,), generator=generator)))


def parameter_groups(model):
    """Two groups as `resnet50 train` (nn::split_for_weight_decay): weights with more than one
    dimension decay, batch-norm weights and biases do not."""
    decay = [parameter for parameter in model.parameters() if parameter.dim() > 1]
    no_decay = [parameter for parameter in model.parameters() if parameter.dim() <= 1]
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def reference_answers(model, images, labels, prefix, torch):
    """PyTorch's eval- and train-mode logits, losses and gradients, the batch-norm buffers after
    the train-mode pass, and the weights after one SGD step, as {prefix + key: tensor}."""
    answers = {}
    for mode in ("eval", "train"):
        model.train(mode == "train")
        model.zero_grad(set_to_none=True)
        logits = model(images)
        loss = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=LABEL_SMOOTHING)
        loss.backward()
        answers[prefix + mode + "_logits"] = logits.detach()
        answers[prefix + mode + "_loss"] = loss.detach().reshape(1)
        for name, parameter in model.named_parameters():
            answers[prefix + mode + "_grad." + name] = parameter.grad.clone()
    for name, buffer in model.named_buffers():  # after the train-mode forward
        answers[prefix + "buffer." + name] = buffer.clone()
    optimizer = torch.optim.SGD(parameter_groups(model), foreach=False, **SGD_SETTINGS)
    optimizer.step()
    for name, parameter in model.named_parameters():
        answers[prefix + "updated." + name] = parameter.detach().clone()
    return answers


def relative_error(ours, reference):
    """max |ours - reference| / max |reference| (absolute when the reference is all zeros)."""
    difference = (ours.double() - reference.double()).abs().max().item()
    scale = reference.double().abs().max().item()
    return difference / scale if scale > 0 else difference


def run(command, what):
    print("$ " + " ".join(str(part) for part in command), flush=True)
    started = time.time()
    try:
        completed = subprocess.run([str(part) for part in command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
    except OSError as error:
        fail("cannot run %s (%s): %s" % (what, command[0], error))
    sys.stdout.write(completed.stdout)
    print("  (%s: %.1f s, exit status %d)" % (what, time.time() - started, completed.returncode), flush=True)
    return completed.returncode


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check-binary", required=True, help="the resnet50_parity_check program")
    parser.add_argument("--infer-binary", required=True, help="the resnet50 example program (its infer command)")
    parser.add_argument("--work-dir", required=True, help="folder for the weights, input and reference files")
    parser.add_argument("--seed", type=int, default=0, help="seed for the weights and the input (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the files in --work-dir after a pass")
    arguments = parser.parse_args()

    try:
        import torch
        import torchvision  # noqa: F401  (convert_torchvision and the model need it)
    except ImportError as error:
        fail("this test compares against PyTorch and torchvision, which /usr/bin/python3 cannot import (%s). "
             "tools/install_deps.sh installs them (Debian's python3-torch and python3-torchvision)." % error)
    sys.path.insert(0, str(TOOLS))
    import convert_torchvision
    from make_fixtures import safetensors_bytes

    for flag, path in (("--check-binary", arguments.check_binary), ("--infer-binary", arguments.infer_binary)):
        if not os.access(path, os.X_OK):
            fail("%s %s is not an executable file; build it first" % (flag, path))
    work = pathlib.Path(arguments.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    weights_path, input_path = work / "weights.safetensors", work / "input.safetensors"
    logits_path, reference_path = work / "infer_logits.safetensors", work / "reference.safetensors"
    started = time.time()

    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    torch.manual_seed(arguments.seed)
    model = torchvision.models.resnet50(num_classes=NUM_CLASSES)
    generator = torch.Generator().manual_seed(arguments.seed + 1)
    randomise_batch_norms(model, generator, torch)
    images = torch.randn(INPUT_SHAPE, generator=generator)
    labels = torch.randint(0, NUM_CLASSES, (INPUT_SHAPE[0],), generator=generator)

    convert_torchvision.save_cudagrad_weights(model.state_dict(), weights_path,
                                              source="tools/parity_resnet50.py seed %d" % arguments.seed)
    # The way back (cudagrad file -> torchvision state_dict) must give the same tensors bit for bit.
    round_trip, _ = convert_torchvision.load_cudagrad_state_dict(weights_path)
    for name, tensor in model.state_dict().items():
        if name not in round_trip or round_trip[name].dtype != tensor.dtype or not torch.equal(round_trip[name], tensor):
            fail("convert_torchvision: '%s' differs after the round trip through %s" % (name, weights_path))
    if set(round_trip) != set(model.state_dict()):
        fail("convert_torchvision: the round trip adds tensors: %s" % sorted(set(round_trip) - set(model.state_dict())))
    input_bytes = safetensors_bytes({"input": images, "labels": labels}, {"seed": arguments.seed})
    if input_bytes != convert_torchvision.safetensors_file_bytes({"input": images, "labels": labels},
                                                                 {"seed": arguments.seed}):
        fail("convert_torchvision.safetensors_file_bytes and make_fixtures.safetensors_bytes write different bytes")
    input_path.write_bytes(input_bytes)

    # The float64 model starts from the same float32 values, so both runs answer the same question
    # and their difference is PyTorch's own float32 rounding error.
    model64 = copy.deepcopy(model).double()
    answers = reference_answers(model, images, labels, "float32.", torch)
    answers.update(reference_answers(model64, images.double(), labels, "float64.", torch))
    metadata = {"label_smoothing": LABEL_SMOOTHING, "num_classes": NUM_CLASSES, "seed": arguments.seed,
                "torch": torch.__version__, "torchvision": torchvision.__version__}
    metadata.update({"sgd." + key: (int(value) if isinstance(value, bool) else value)
                     for key, value in SGD_SETTINGS.items()})
    convert_torchvision.write_safetensors(reference_path, answers, metadata)
    print("PyTorch %s reference (float32 and float64) written in %.1f s" % (torch.__version__, time.time() - started),
          flush=True)

    failures = []
    if run([arguments.infer_binary, "infer", "--weights", weights_path, "--input", input_path, "--output", logits_path],
           "resnet50 infer") != 0:
        failures.append("resnet50 infer failed")
    else:
        logits = convert_torchvision.read_safetensors(logits_path)[0].get("logits")
        expected = answers["float32.eval_logits"]
        if logits is None or tuple(logits.shape) != tuple(expected.shape):
            failures.append("resnet50 infer wrote %s, expected logits of shape %s"
                            % (None if logits is None else tuple(logits.shape), tuple(expected.shape)))
        else:
            error = relative_error(logits, expected)
            verdict = "ok" if error <= INFER_TOLERANCE else "FAIL"
            print("resnet50 infer, eval-mode logits (float32): max relative error %.3g (tolerance %g) %s"
                  % (error, INFER_TOLERANCE, verdict), flush=True)
            if error > INFER_TOLERANCE:
                failures.append("resnet50 infer logits differ from torchvision's by %.3g > %g" % (error, INFER_TOLERANCE))

    if run([arguments.check_binary, "--weights", weights_path, "--input", input_path, "--reference", reference_path],
           "resnet50_parity_check") != 0:
        failures.append("resnet50_parity_check reported mismatches (above)")

    if failures:
        fail("; ".join(failures) + ". Files kept in %s." % work)
    if not arguments.keep:
        for path in (weights_path, input_path, logits_path, reference_path):
            path.unlink(missing_ok=True)
    print("resnet50_parity: PASS (%.1f s)" % (time.time() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
