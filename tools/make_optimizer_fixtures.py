#!/usr/bin/python3
"""Writes tests/fixtures/optimizer_*.safetensors: PyTorch's SGD and learning-rate schedules, for
tests/test_optim.cpp to compare cudagrad's against.

Run from anywhere with Debian's PyTorch (python3-torch 1.13, CPU):

    /usr/bin/python3 tools/make_optimizer_fixtures.py

SGD cases (optimizer_sgd_<case>.safetensors). A tiny model's parameters (a Linear(5, 3) weight
and bias, a 3x3 conv weight, a batch-norm scale), in float64, split into two parameter groups:
the weights with weight decay 5e-4 and the rest with none, as ResNet recipes do. torch.optim.SGD
(foreach=False) then takes several steps with fixed random gradients and a learning rate that
changes between steps. No forward pass is needed to replay it: the file holds
    initial.<name>               the parameters before the first step
    grad.<step>.<name>           the gradient of each parameter at each step; missing when the
                                 parameter has no gradient at that step (SGD must skip it)
    lr                           [steps] the learning rate of each step
    after.<step>.<name>          the parameters after each step
    momentum_buffer.<name>       the momentum buffers after the last step (where PyTorch has one)
and in "__metadata__": momentum, dampening, nesterov, weight_decay, steps, the parameter names of
each group (comma-separated), and the dtype the case runs in.

Schedules (optimizer_schedules.safetensors): one float64 tensor per schedule holding the learning
rate PyTorch's scheduler gives at steps 0..49 (the optimiser's lr before each step, the
scheduler stepped once per iteration); the constructor arguments are in "__metadata__".

The safetensors bytes come from safetensors_bytes in tools/make_fixtures.py (sorted keys, so
reruns rewrite identical files). That script deletes fixtures it did not write; see the note
in tests/test_optim.cpp if these files go missing.
"""

import pathlib
import sys
import warnings
import zlib

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_fixtures import safetensors_bytes  # noqa: E402  (the shared writer)

FIXTURE_DIR = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures"
F64 = torch.float64

PARAMETER_SHAPES = {
    "linear.weight": (3, 5),
    "conv.weight": (4, 3, 3, 3),
    "linear.bias": (3,),
    "bn.weight": (4,),
}
DECAY_GROUP = ["linear.weight", "conv.weight"]
NO_DECAY_GROUP = ["linear.bias", "bn.weight"]
WEIGHT_DECAY = 5e-4

# name -> SGD options, learning rates per step, and which parameters lack a gradient at which step.
SGD_CASES = {
    # lr from MultiStepLR(0.1, milestones [2, 4], gamma 0.1), recorded step by step.
    "momentum": dict(momentum=0.9, dampening=0.0, nesterov=False, steps=6, lr="multistep", missing={}),
    "nesterov": dict(momentum=0.9, dampening=0.0, nesterov=True, steps=5,
                     lr=[0.1, 0.05, 0.2, 0.01, 0.07], missing={}),
    # The bias has no gradient at steps 0 and 2: its buffer starts at step 1 and sits out step 2.
    "dampening": dict(momentum=0.9, dampening=0.3, nesterov=False, steps=5,
                      lr=[0.1, 0.08, 0.06, 0.3, 0.02], missing={0: ["linear.bias"], 2: ["linear.bias"]}),
    "plain": dict(momentum=0.0, dampening=0.0, nesterov=False, steps=4, lr=[0.1, 0.2, 0.05, 0.5],
                  missing={1: ["bn.weight"]}),
}


def sgd_case(options):
    parameters = {name: torch.randn(*shape, dtype=F64).requires_grad_(True)
                  for name, shape in PARAMETER_SHAPES.items()}
    tensors = {"initial." + name: p.detach().clone() for name, p in parameters.items()}
    optimizer = torch.optim.SGD(
        [dict(params=[parameters[n] for n in DECAY_GROUP], weight_decay=WEIGHT_DECAY),
         dict(params=[parameters[n] for n in NO_DECAY_GROUP], weight_decay=0.0)],
        lr=0.1, momentum=options["momentum"], dampening=options["dampening"], nesterov=options["nesterov"],
        foreach=False)
    schedule = None
    if options["lr"] == "multistep":
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[2, 4], gamma=0.1)
    lrs = []
    for step in range(options["steps"]):
        if schedule is None:
            for group in optimizer.param_groups:
                group["lr"] = options["lr"][step]
        lrs.append(optimizer.param_groups[0]["lr"])
        for name, p in parameters.items():
            if name in options["missing"].get(step, []):
                p.grad = None
            else:
                p.grad = torch.randn(*p.shape, dtype=F64)
                tensors["grad.%d.%s" % (step, name)] = p.grad.clone()
        optimizer.step()
        if schedule is not None:
            schedule.step()
        for name, p in parameters.items():
            tensors["after.%d.%s" % (step, name)] = p.detach().clone()
    for name, p in parameters.items():
        buffer = optimizer.state[p].get("momentum_buffer")
        if buffer is not None:
            tensors["momentum_buffer." + name] = buffer.clone()
    tensors["lr"] = torch.tensor(lrs, dtype=F64)
    metadata = dict(momentum=repr(options["momentum"]), dampening=repr(options["dampening"]),
                    nesterov=str(options["nesterov"]).lower(), weight_decay=repr(WEIGHT_DECAY),
                    steps=str(options["steps"]), decay_group=",".join(DECAY_GROUP),
                    no_decay_group=",".join(NO_DECAY_GROUP))
    return tensors, metadata


SCHEDULE_STEPS = 50


def record(make_scheduler):
    """The lr PyTorch's scheduler gives at steps 0..49, stepping it after each optimiser step."""
    parameter = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([parameter], lr=0.1, momentum=0.9)
    scheduler = make_scheduler(optimizer)
    lrs = []
    for _ in range(SCHEDULE_STEPS):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient: a no-op that keeps PyTorch from warning about the order
        scheduler.step()
    return torch.tensor(lrs, dtype=F64)


def schedules_case():
    # SequentialLR steps its second scheduler with the deprecated epoch argument; say nothing.
    warnings.filterwarnings("ignore", message="The epoch parameter")
    s = torch.optim.lr_scheduler
    tensors = {
        "StepLR": record(lambda o: s.StepLR(o, step_size=7, gamma=0.5)),
        # 25 twice: two decays at once, as PyTorch's Counter of milestones does.
        "MultiStepLR": record(lambda o: s.MultiStepLR(o, milestones=[10, 25, 25, 40], gamma=0.3)),
        # T_max 30 over 50 steps: the cosine runs past its end and climbs again.
        "CosineAnnealingLR": record(lambda o: s.CosineAnnealingLR(o, T_max=30, eta_min=0.001)),
        "OneCycleLR": record(lambda o: s.OneCycleLR(o, max_lr=0.1, total_steps=50, cycle_momentum=False)),
        "OneCycleLR_three_phase": record(lambda o: s.OneCycleLR(
            o, max_lr=0.4, total_steps=50, pct_start=0.25, div_factor=10.0, final_div_factor=100.0,
            three_phase=True, cycle_momentum=False)),
        "WarmupCosine": record(lambda o: s.SequentialLR(o, [
            s.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=5),
            s.CosineAnnealingLR(o, T_max=45, eta_min=0.001)], milestones=[5])),
    }
    metadata = dict(
        base_lr="0.1", steps=str(SCHEDULE_STEPS),
        StepLR="step_size=7 gamma=0.5",
        MultiStepLR="milestones=10,25,25,40 gamma=0.3",
        CosineAnnealingLR="T_max=30 eta_min=0.001",
        OneCycleLR="max_lr=0.1 total_steps=50 (defaults otherwise, cycle_momentum=False)",
        OneCycleLR_three_phase="max_lr=0.4 total_steps=50 pct_start=0.25 div_factor=10 final_div_factor=100",
        WarmupCosine="LinearLR(start_factor=0.1, total_iters=5) then CosineAnnealingLR(T_max=45, eta_min=0.001)")
    return tensors, metadata


def main():
    torch.set_num_threads(1)
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    cases = [("optimizer_sgd_" + name, lambda options=options: sgd_case(options))
             for name, options in SGD_CASES.items()]
    cases.append(("optimizer_schedules", schedules_case))
    for name, function in cases:
        torch.manual_seed(zlib.crc32(name.encode()))
        tensors, metadata = function()
        metadata["case"] = name
        metadata["generator"] = "tools/make_optimizer_fixtures.py, torch %s" % torch.__version__.split("+")[0]
        data = safetensors_bytes(tensors, metadata)
        path = FIXTURE_DIR / (name + ".safetensors")
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        print("%-40s %6d bytes, %d tensors" % (path.name, len(data), len(tensors)))


if __name__ == "__main__":
    main()
