"""Loop overhead: infcop's masked training epoch (infcop.science.training.train_epoch with a MaskEnforcer and
torch.optim.SGD, as every job) against a minimal plain PyTorch epoch on the same model, data, batch size and optimizer
settings (torch.optim.SGD, no masks, no hooks, no loss bookkeeping).

All models start from the same weights; the epochs are timed alternately, repeated, and the figure
is the ratio of the medians of CPU time (ours / plain; one torch thread, so CPU time is
the work; the wall-clock ratio is printed beside it). Cases: small_cnn on digits (whole training split) and
resnet20 on a CIFAR-shaped random subset (32x32x3); augmentation is off in both loops so that both
do the same work. A second plain loop on its own copy of the model is timed too: its ratio to the
first is the noise floor of the measurement.

    python bench/loop_overhead.py [--repeats 7] [--threads 1] [--cifar-images 2048]
"""
from __future__ import annotations

import copy

from _common import alternate, machine, median, result, timing_parser

import torch
from torch import nn

from infcop.science.data import Dataset, Split, load_dataset
from infcop.science.masks import MaskEnforcer, full_masks
from infcop.science.models import build_model
from infcop.science.training import epoch_generator, train_epoch

TARGET = 1.10
LR, MOMENTUM, WD = 0.05, 0.9, 5e-4


def plain_epoch(model, x, y, opt, batch_size, generator):
    model.train()
    order = torch.randperm(len(y), generator=generator)
    for start in range(0, len(y), batch_size):
        idx = order[start:start + batch_size]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def run_case(name, arch, data: Dataset, batch_size, repeats):
    torch.manual_seed(0)
    ours_model = build_model(arch, data.in_channels, data.num_classes, data.image_size)
    plain_model = copy.deepcopy(ours_model)
    control_model = copy.deepcopy(ours_model)  # a second plain loop: the A/A noise floor of the ratio
    masks = full_masks(ours_model)
    enforcer = MaskEnforcer(ours_model, masks)
    ours_opt = torch.optim.SGD(ours_model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=WD)
    plain_opt = torch.optim.SGD(plain_model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True, weight_decay=WD)
    control_opt = torch.optim.SGD(control_model.parameters(), lr=LR, momentum=MOMENTUM, nesterov=True,
                                  weight_decay=WD)
    epoch = {"ours": 0, "plain": 0, "control": 0}

    def ours():
        epoch["ours"] += 1
        train_epoch(ours_model, data, ours_opt, enforcer, epoch_generator(0, 1, epoch["ours"]), batch_size)

    def plain():
        epoch["plain"] += 1
        plain_epoch(plain_model, data.train.x, data.train.y, plain_opt, batch_size,
                    epoch_generator(0, 1, epoch["plain"]))

    def control():
        epoch["control"] += 1
        plain_epoch(control_model, data.train.x, data.train.y, control_opt, batch_size,
                    epoch_generator(0, 1, epoch["control"]))

    t = alternate({"ours": ours, "plain": plain, "control": control}, repeats)
    for clock in ("wall", "cpu"):
        o, p, c = (median(t[clock][k]) for k in ("ours", "plain", "control"))
        print(f"{name}: {len(data.train)} images, batch {batch_size}; medians of {repeats}, {clock} time: "
              f"ours {o:.3f} s, plain {p:.3f} s per epoch, ratio {o / p:.3f} (plain vs a second plain "
              f"copy, the noise floor: {c / p:.3f})")
    return o / p, c / p


def main():
    ap = timing_parser(__doc__, repeats=7)
    ap.add_argument("--cifar-images", type=int, default=2048)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    digits = load_dataset("digits", 0, 0.15)
    digits = Dataset(digits.name, digits.train, digits.val, digits.test, digits.num_classes, augment=False)
    r1 = run_case("small_cnn/digits", "small_cnn", digits, 64, args.repeats)
    g = torch.Generator().manual_seed(0)
    n = args.cifar_images
    tr = Split(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g))
    cifar = Dataset("cifar_shaped", tr, tr, tr, 10, augment=False)
    r2 = run_case("resnet20/cifar-shaped", "resnet20", cifar, 64, max(3, args.repeats - 2))
    for key, (r, aa) in (("small_cnn_digits", r1), ("resnet20_cifar_shaped", r2)):
        print(result(f"loop_overhead_{key}", f"{r:.3f}x plain PyTorch (A/A noise floor {aa:.3f})",
                     f"<= {TARGET:.2f}", r <= TARGET))


if __name__ == "__main__":
    main()
