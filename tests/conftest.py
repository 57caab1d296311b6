import struct
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def autograd_gradflow(model, probe, masks) -> list[float]:
    """What gradient flow must equal: autograd's mean |dL/dw| over each prunable layer's surviving weights."""
    from infcop.science.masks import prunable

    model.zero_grad()
    torch.nn.functional.cross_entropy(model(probe.x), probe.y).backward()
    return [float(w.grad[masks[n]].abs().mean()) for n, w in prunable(model).items()]


def fast_settings(**training) -> dict:
    """Settings for unit tests on digits: a few short epochs on CPU."""
    from infcop.experiments.config import complete_settings

    return complete_settings({"dense": {"epochs": 2},
                              "training": {"max_epochs": 2, "device": "cpu", **training},
                              "flows": {"probe_size": 64, "batch_size": 32}})


def write_idx_mnist(root: Path, n_train: int = 48, n_test: int = 24, seed: int = 0) -> Path:
    """A few dozen MNIST-format (IDX) images in root/MNIST/raw, read by torchvision's own MNIST class."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    return root


@pytest.fixture
def mnist_dir(tmp_path):
    return write_idx_mnist(tmp_path / "data")


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)
