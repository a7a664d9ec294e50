"""Step-only training throughput of Fovea's models in PyTorch, for side-by-side comparison.

Trains each model exactly as its Fovea recipe does (optimizer, batch size; random 1x28x28
inputs, so data loading is not timed, as d2l's step timer does not time it) and prints one line
per model: `MODEL examples/sec STEP_MS`. The models are d2l's LeNet (seed: Sigmoid + AvgPool,
modern: ReLU + MaxPool) and `nin_small` / `resnet_small` from `models.py` (the golden cases'
specification, `../shared/golden-cnn/models.py` by default).

    python3 benches/peers/pytorch_step.py [--models seed,modern,resnet-small,nin-small]
        [--threads 2] [--steps 20] [--models-py PATH]

Needs `torch` (a virtual environment outside the repository: `python3 -m venv /tmp/torch &&
/tmp/torch/bin/pip install torch`).
"""
import argparse
import importlib.util
import os
import sys
import time

import torch
from torch import nn


def lenet(modern):
    act = nn.ReLU if modern else nn.Sigmoid
    pool = nn.MaxPool2d if modern else nn.AvgPool2d
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), act(), pool(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), act(), pool(kernel_size=2, stride=2),
        nn.Flatten(), nn.Linear(400, 120), act(), nn.Linear(120, 84), act(), nn.Linear(84, 10))


def recipes(models_py):
    spec = importlib.util.spec_from_file_location("models", models_py)
    models = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(models)
    sgd = lambda lr, **kw: (lambda p: torch.optim.SGD(p, lr=lr, **kw))
    adam = lambda lr: (lambda p: torch.optim.Adam(p, lr=lr))
    nesterov = dict(momentum=0.9, nesterov=True, weight_decay=5e-4)
    return {
        "seed": (lambda: lenet(False), sgd(0.9), 256),
        "modern": (lambda: lenet(True), adam(4e-3), 256),
        "resnet-small": (models.resnet_small, sgd(0.1, **nesterov), 128),
        "nin-small": (lambda: models.nin_small(0.5), adam(2e-3), 128),
    }


def examples_per_sec(build, optimizer, batch, steps):
    torch.manual_seed(0)
    net = build()
    opt = optimizer(net.parameters())
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    elapsed = time.perf_counter() - start
    return batch * steps / elapsed, 1000 * elapsed / steps


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_models = os.path.join(here, "..", "..", "..", "shared", "golden-cnn", "models.py")
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="seed,modern,resnet-small,nin-small")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--models-py", default=default_models)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    table = recipes(a.models_py)
    for name in a.models.split(","):
        if name not in table:
            sys.exit(f"unknown model {name!r} (expected one of: {', '.join(table)})")
        build, optimizer, batch = table[name]
        eps, ms = examples_per_sec(build, optimizer, batch, a.steps)
        print(f"{name} {eps:.0f} {ms:.2f}", flush=True)


if __name__ == "__main__":
    main()
