"""GPU epoch and flow timings: resnet18 and vgg16 on CIFAR-shaped random data (50k images), fp32 vs bf16,
our masked loop vs a minimal plain PyTorch loop, and flows as a fraction of an epoch. Ratios are measured
side by side in one run. `--smoke` runs a tiny version on the CPU (to check the script itself).

    python bench/gpu_bench.py            # on a GPU machine (bench/gpu_check.sh runs it)
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from infcop.science.data import Dataset, Split
from infcop.science.flows import measure_flows
from infcop.science.masks import MaskEnforcer, full_masks
from infcop.science.models import build_model
from infcop.science.pruners import prune
from infcop.science.training import (autocast_for, configure_backend, epoch_generator, optimizer_for, prepare_model,
                             train_epoch)

TR = {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_epoch(model, data: Dataset, opt, batch_size, autocast, generator):
    """The minimal loop: the same batches, no masks, no hooks, torch.optim.SGD."""
    model.train()
    n = len(data.train)
    order = torch.randperm(n, generator=generator).to(data.train.x.device)
    for s in range(0, n, batch_size):
        idx = order[s:s + batch_size]
        with autocast():
            loss = nn.functional.cross_entropy(model(data.train.x[idx]), data.train.y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def timed(fn, device):
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU")
    ap.add_argument("--samples", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    device = torch.device("cpu" if args.smoke else "cuda")
    n = 256 if args.smoke else args.samples
    configure_backend(device, deterministic=False)
    name = "CPU (smoke)" if args.smoke else torch.cuda.get_device_name(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    split = Split(x, y).to(device)
    data = Dataset("cifar-shaped", split, Split(x[:512], y[:512]).to(device), split, 10, augment=False)
    probe = Split(x[:256], y[:256]).to(device)
    rows = []
    for arch in ("resnet18", "vgg16"):
        for precision in ("fp32", "bf16"):
            autocast = autocast_for(device, precision)
            torch.manual_seed(0)
            ours = prepare_model(build_model(arch, 3, 10, 32), device)
            masks = prune(ours, full_masks(ours), {"name": "magnitude", "rate": 0.5})
            masks = {k: v.to(device) for k, v in masks.items()}
            enforcer = MaskEnforcer(ours, masks)
            enforcer.apply_weights()
            plain = prepare_model(build_model(arch, 3, 10, 32), device)
            opt_ours = optimizer_for(ours, TR)
            opt_plain = torch.optim.SGD(plain.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
            t_ours, t_plain, t_flow = [], [], []
            for r in range(args.repeats + 1):  # the first round warms up (cudnn autotuning)
                a = timed(lambda: train_epoch(ours, data, opt_ours, enforcer, epoch_generator(0, 1, r), 256,
                                              autocast), device)
                b = timed(lambda: plain_epoch(plain, data, opt_plain, 256, autocast, epoch_generator(0, 1, r)),
                          device)
                f = timed(lambda: measure_flows(ours, probe, 256, reference=plain, masks=masks, autocast=autocast),
                          device)
                if r:
                    t_ours.append(a), t_plain.append(b), t_flow.append(f)
            rows.append((arch, precision, statistics.median(t_ours), statistics.median(t_plain),
                         statistics.median(t_flow)))
    print(f"\nGPU epoch and flow timings on {name}, {n} CIFAR-shaped images, batch 256, median of {args.repeats}")
    print(f"{'arch':10} {'prec':5} {'ours s':>8} {'plain s':>8} {'ours/plain':>10} {'flows s':>8} {'flows/epoch':>11}")
    for arch, prec, o, p, f in rows:
        print(f"{arch:10} {prec:5} {o:8.2f} {p:8.2f} {o / p:10.3f} {f:8.3f} {100 * f / o:10.2f}%")
    for arch, prec, o, p, f in rows:
        print(f"RESULT loop_ratio_{arch}_{prec}: {o / p:.3f} (target <= 1.10) {'met' if o / p <= 1.10 else 'missed'}")
        print(f"RESULT flow_fraction_{arch}_{prec}: {100 * f / o:.2f}% (target <= 5%) "
              f"{'met' if f / o <= 0.05 else 'missed'}")
    for arch in ("resnet18", "vgg16"):
        fp32 = next(r for r in rows if r[0] == arch and r[1] == "fp32")[2]
        bf16 = next(r for r in rows if r[0] == arch and r[1] == "bf16")[2]
        print(f"RESULT bf16_speedup_{arch}: {fp32 / bf16:.2f}x info")


if __name__ == "__main__":
    main()
