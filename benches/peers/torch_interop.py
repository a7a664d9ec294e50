"""Cross-checks Fovea's weights with PyTorch on the Fashion-MNIST test set.

    export: python3 benches/peers/torch_interop.py export OUT.safetensors [--model resnet_small]
        writes a freshly initialised PyTorch model's state_dict (seed 0) as a bare safetensors
        file, for `lenet eval --checkpoint OUT.safetensors --model resnet-small`.
    eval:   python3 benches/peers/torch_interop.py eval CHECKPOINT [--model resnet_small]
        loads a bare state_dict or a Fovea checkpoint (optimizer state under `optim.` dropped)
        into the PyTorch model and prints the test accuracy with Fovea's input normalisation
        (x - 0.2860) / 0.3530 (`--normalize none` for LeNet checkpoints).

Both print `accuracy A` so the figure can be compared with `lenet eval`'s. Needs torch,
safetensors and the Debian package dataset-fashion-mnist.
"""
import argparse
import gzip
import importlib.util
import os

import numpy as np
import torch
from safetensors.torch import load_file, save_file

DATA = "/usr/share/datasets/fashion-mnist"


def models_module(path):
    spec = importlib.util.spec_from_file_location("models", path)
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    return m


def test_set():
    with gzip.open(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.tensor(x, dtype=torch.float32) / 255.0, torch.tensor(y, dtype=torch.int64)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=["export", "eval"])
    p.add_argument("path")
    p.add_argument("--model", default="resnet_small")
    p.add_argument("--normalize", default="0.2860,0.3530")
    p.add_argument("--models-py", default=os.path.join(here, "..", "..", "..", "shared", "golden-cnn", "models.py"))
    a = p.parse_args()
    torch.manual_seed(0)
    model = models_module(a.models_py).MODELS[a.model]()
    if a.action == "export":
        save_file(model.state_dict(), a.path)
    else:
        sd = {k: v for k, v in load_file(a.path).items() if not k.startswith("optim.")}
        model.load_state_dict(sd)
    model.eval()
    x, y = test_set()
    if a.normalize != "none":
        mean, std = map(float, a.normalize.split(","))
        x = (x - mean) / std
    with torch.no_grad():
        correct = sum((model(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item() for i in range(0, len(y), 500))
    print(f"accuracy {correct / len(y):.4f}")


if __name__ == "__main__":
    main()
