"""Flow overhead: the time to measure information flow + gradient flow after an epoch, as a fraction of
that epoch's training time.

  ours  = infcop.science.flows.measure_flows on the fixed probe (flows.probe_size 256, one streaming pass, with
          the dense reference for similarity and the masks, exactly what every retraining epoch calls)
  study = the original study's way, as the reference: correlations over the WHOLE training split in two
          passes (pass 1: forward + backward for the gradient flow and each unit's mean / std; pass 2:
          forward for the correlations of the standardised activations), every epoch
  epoch = infcop.science.training.train_epoch (MaskEnforcer + torch.optim.SGD, as every job), the denominator

Cases: small_cnn on digits (full epochs), resnet20 and vgg16 on CIFAR-shaped random data (32x32x3,
10,000 training images). A full CPU epoch of the CIFAR-shaped models takes minutes, so for them the epoch
and the study's two passes are timed over a fixed number of batches and scaled linearly to the 10,000
images (both are a sum of identical per-batch costs); ours is always timed in full. The three are timed
interleaved, repeated, and the figure is the ratio of the medians of CPU time (one torch thread: CPU
time is the work; wall-clock medians are printed beside it).

    python bench/flow_overhead.py [--repeats 5] [--threads 1] [--cases digits,resnet20,vgg16]
"""
from __future__ import annotations

import copy
import math

from _common import alternate, machine, median, result, timing_parser

import torch
from torch import nn

import infcop.science.flows as flows_module
from infcop.science.data import Dataset, Split, batches, load_dataset, probe_split
from infcop.science.flows import _spatial_mean, capture_activations, measure_flows
from infcop.science.masks import MaskEnforcer, full_masks
from infcop.science.models import build_model, flow_layers
from infcop.science.training import epoch_generator, train_epoch

TARGET = 0.05


def study_flows(model: nn.Module, split: Split, batch_size: int = 256):
    """The original study's measurement: connectivity over the whole training split in two passes
    (means / stds, then correlations) and gradient flow over the whole split."""
    was = model.training
    model.eval()
    layers = flow_layers(model)
    weights = [m.weight for _, m in layers]
    saved = [w.grad for w in weights]
    for w in weights:
        w.grad = None
    n = len(split)
    s = ss = None
    with capture_activations(model) as (_, acts):
        for xb, yb in batches(split, batch_size):  # pass 1: gradients, means and stds
            loss = nn.functional.cross_entropy(model(xb), yb, reduction="sum") / n
            loss.backward()
            a = [_spatial_mean(t).double() for t in acts]  # the study: a conv unit's spatial mean
            if s is None:
                s, ss = [t.sum(0) for t in a], [(t * t).sum(0) for t in a]
            else:
                for i, t in enumerate(a):
                    s[i] += t.sum(0)
                    ss[i] += (t * t).sum(0)
        mean = [t / n for t in s]
        std = [(q / n - m * m).clamp_min(0).sqrt() for q, m in zip(ss, mean)]
        cross = [None] * (len(layers) - 1)
        with torch.no_grad():
            for xb, _ in batches(split, batch_size):  # pass 2: correlations
                model(xb)
                z = [(_spatial_mean(t).double() - m) / sd.clamp_min(1e-12) for t, m, sd in zip(acts, mean, std)]
                for i in range(len(cross)):
                    c = z[i].T @ z[i + 1]
                    cross[i] = c if cross[i] is None else cross[i] + c
    conn = [float((c / n).clamp(-1, 1).mean()) for c in cross]
    grad = [float(w.grad.abs().double().mean()) for w in weights]
    for w, g in zip(weights, saved):
        w.grad = g
    model.train(was)
    return conn, grad


def cifar_shaped(n_train: int, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)

    def split(n):
        return Split(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g))

    return Dataset("cifar_shaped", split(n_train), split(500), split(500), 10, augment=True)


def subset(data: Dataset, n: int) -> Dataset:
    return Dataset(data.name, Split(data.train.x[:n], data.train.y[:n]), data.val, data.test,
                   data.num_classes, data.augment)


def run_case(name: str, arch: str, data: Dataset, batch_size: int, repeats: int, timed_batches: int | None):
    torch.manual_seed(0)
    model = build_model(arch, data.in_channels, data.num_classes, data.image_size)
    reference = copy.deepcopy(model).eval()  # the dense network (similarity), as in every retraining epoch
    masks = full_masks(model)
    enforcer = MaskEnforcer(model, masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4)
    probe = probe_split(data.train, 256, 0)
    n_full = len(data.train)
    if timed_batches is None:  # full epochs
        part, scale = data, 1.0
    else:
        part = subset(data, timed_batches * batch_size)
        scale = n_full / len(part.train)
    epoch = [0]

    def train():
        epoch[0] += 1
        train_epoch(model, part, opt, enforcer, epoch_generator(0, 1, epoch[0]), batch_size)

    def ours():
        measure_flows(model, probe, 256, reference=reference, masks=masks)

    def ours_uncached():  # as before the reference's activations were cached: its probe pass every call
        flows_module._REFERENCE_CACHE.clear()
        measure_flows(model, probe, 256, reference=reference, masks=masks)

    def study():
        study_flows(model, part.train, 256)

    fns = {"epoch": train, "ours": ours, "study": study}
    if hasattr(flows_module, "_REFERENCE_CACHE"):
        fns["ours_uncached"] = ours_uncached
    t = alternate(fns, repeats)
    how = "full epoch" if timed_batches is None else \
        f"{timed_batches} of {math.ceil(n_full / batch_size)} batches timed, scaled to the epoch"
    for clock in ("wall", "cpu"):
        ep, fo, fs = (median(t[clock]["epoch"]) * scale, median(t[clock]["ours"]),
                      median(t[clock]["study"]) * scale)
        print(f"{name}: {n_full} training images, batch {batch_size} ({how}); medians of {repeats}, {clock} "
              f"time: epoch {ep:.3f} s, ours {fo:.3f} s ({100 * fo / ep:.1f}%), study {fs:.3f} s "
              f"({100 * fs / ep:.1f}%)")
        if "ours_uncached" in t[clock]:
            fu = median(t[clock]["ours_uncached"])
            print(f"    ours without the reference cache: {fu:.3f} s ({100 * fu / ep:.1f}%); the cache saves "
                  f"{100 * (1 - fo / fu):.0f}% of the flow time")
    return fo / ep, fs / ep


def main():
    ap = timing_parser(__doc__, repeats=5)
    ap.add_argument("--cases", default="digits,resnet20,vgg16")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = args.cases.split(",")
    print(f"machine: {machine()}")
    out = []
    if "digits" in cases:
        data = load_dataset("digits", 0, 0.15)
        out.append(("small_cnn_digits", run_case("small_cnn/digits", "small_cnn", data, 64, args.repeats, None)))
    if "resnet20" in cases or "vgg16" in cases:
        data = cifar_shaped(10_000)
        if "resnet20" in cases:
            out.append(("resnet20_cifar_shaped", run_case("resnet20/cifar-shaped", "resnet20", data, 64,
                                                          args.repeats, 24)))
        if "vgg16" in cases:
            out.append(("vgg16_cifar_shaped", run_case("vgg16/cifar-shaped", "vgg16", data, 64,
                                                       max(3, args.repeats - 2), 6)))
    for key, (ours, study) in out:
        print(result(f"flow_overhead_{key}", f"{100 * ours:.1f}% of an epoch (ours, probe 256)",
                     f"<= {100 * TARGET:.0f}%", ours <= TARGET))
        print(result(f"flow_overhead_{key}_study_way", f"{100 * study:.1f}% of an epoch "
                     f"(whole training split, two passes; ours is {study / ours:.0f}x cheaper)"))


if __name__ == "__main__":
    main()
