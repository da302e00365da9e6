#!/usr/bin/python3
"""Writes tests/fixtures/resnet_state_names.txt: every state_dict entry (name, dtype, shape) of
torchvision's ResNets, which cudagrad's ResNet must reproduce exactly so that torchvision
weights load without renaming. Run with Debian's python3-torchvision: /usr/bin/python3 tools/make_resnet_names.py
"""
import os
import torch
import torchvision

CASES = [
    ("resnet18", dict(num_classes=1000)),
    ("resnet50", dict(num_classes=1000)),
    ("resnet50", dict(num_classes=10)),
    ("resnet101", dict(num_classes=1000)),
]

here = os.path.dirname(os.path.abspath(__file__))
path = os.path.join(here, "..", "tests", "fixtures", "resnet_state_names.txt")
with open(path, "w") as out:
    for name, kwargs in CASES:
        model = getattr(torchvision.models, name)(**kwargs)
        out.write(f"model {name} {kwargs['num_classes']}\n")
        for key, tensor in model.state_dict().items():
            dtype = {torch.float32: "float32", torch.int64: "int64"}[tensor.dtype]
            out.write(f"{key} {dtype} {' '.join(str(s) for s in tensor.shape)}\n")
print("wrote", path)
