"""Memory: peak resident set size (RSS) of one `imp_iteration` job, and of the flow computation.

1. Peak RSS (the child's own ru_maxrss, from os.wait4) of a whole `infcop imp-iteration` job: digits /
   small_cnn (the real command, default settings), and a CIFAR-shaped case (resnet20 on random 32x32x3
   data, 10,000 training images, through the library: infcop.running.steps.imp_iteration with the data set
   swapped for the random one, 1 retraining epoch). For scale: the peak RSS of `import torch` alone.
2. The flow computation's memory does not grow with the data set: in a fresh process per case, the peak
   RSS delta of one infcop.science.flows.measure_flows call (probe 256, with the dense reference and masks, the
   call every retraining epoch makes) with 10,000 and with 40,000 training images in memory. The peak is
   reset just before the call (/proc/self/clear_refs), so the delta is the call's own; a first call
   before it does the one-time set-up, and glibc runs with a fixed mmap threshold (see FIXED_MMAP).

    python bench/memory.py [--sizes 10000,40000] [--archs resnet20,vgg16]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from _common import SCRATCH, default_config, env, machine, median, result, tool

import yaml

HERE = Path(__file__).resolve()
# glibc keeps freed heap memory and reuses it in an order that makes a single call's peak vary by +-50 MiB
# from run to run; with a fixed mmap threshold every tensor buffer is its own mapping, returned at once,
# so that RSS follows live memory and the flows' peak delta is repeatable to a fraction of a MiB
FIXED_MMAP = {"MALLOC_MMAP_THRESHOLD_": "131072"}
GROWTH_TOLERANCE_MB = 8


def run_measured(cmd, extra_env: dict | None = None) -> tuple[float, str]:
    """Peak RSS of `cmd` measured by a tiny wrapper process that waits for it with wait4."""
    wrapper = ("import os, subprocess, sys, json\n"
               "p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
               "_, status, ru = os.wait4(p.pid, 0)\n"
               "out, err = p.stdout.read().decode(), p.stderr.read().decode()\n"
               "print(json.dumps({'status': status, 'maxrss_kb': ru.ru_maxrss, 'out': out, 'err': err[-3000:]}))\n")
    r = subprocess.run([sys.executable, "-c", wrapper, *map(str, cmd)], capture_output=True, text=True,
                       env={**env(), **(extra_env or {})})
    info = json.loads(r.stdout)
    if info["status"] != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{info['err']}")
    return info["maxrss_kb"] / 1024, info["out"]


# ----------------------------------------------------------------------------------------------- children

def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def child_flows(arch: str, n_train: int):
    import copy

    import torch

    from infcop.science.data import Split, probe_split
    from infcop.science.flows import measure_flows
    from infcop.science.masks import full_masks
    from infcop.science.models import build_model

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    train = Split(torch.randn(n_train, 3, 32, 32, generator=g), torch.randint(0, 10, (n_train,), generator=g))
    torch.manual_seed(0)
    model = build_model(arch, 3, 10, 32)
    reference = copy.deepcopy(model)
    masks = full_masks(model)
    probe = probe_split(train, 256, 0)
    # one call first: one-time lazy set-up (kernels, thread pools) is not the flows' memory; then freed
    # heap pages are handed back to the system so that RSS before the measured call is what is live
    measure_flows(model, probe, 256, reference=reference, masks=masks)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    before = _status_kb("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
        reset = True
    except OSError:
        reset = False
    measure_flows(model, probe, 256, reference=reference, masks=masks)
    peak = _status_kb("VmHWM")
    print(json.dumps({"rss_before_mb": before / 1024, "peak_mb": peak / 1024, "delta_mb": (peak - before) / 1024,
                      "reset": reset, "data_mb": train.x.numel() * 4 / 2**20}))


def _random_cifar(n_train):
    import torch

    from infcop.science.data import Dataset, Split

    g = torch.Generator().manual_seed(0)

    def split(n):
        return Split(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g))

    return Dataset("cifar10", split(n_train), split(1000), split(1000), 10, augment=True)


def child_cifar_job(stage: str, workdir: str, n_train: int):
    """One pipeline stage through the library on random CIFAR-shaped data (resnet20)."""
    import infcop.running.job as job
    import infcop.running.steps as steps
    from infcop.experiments.config import complete_settings, settings_of, with_defaults

    data = _random_cifar(n_train)
    job.load_dataset = lambda *a, **k: data
    cfg = with_defaults(default_config())
    settings = complete_settings(settings_of(cfg))
    settings["dense"]["epochs"] = 1
    settings["training"]["max_epochs"] = 1
    w = Path(workdir)
    if stage == "dense":
        steps.train_dense("cifar10", "resnet20", 0, settings, w / "dense", threads=1)
    else:
        method = cfg["methods"]["ciap"]
        steps.imp_iteration("cifar10", "resnet20", 0, "ciap", method, settings, 1, w / "dense", w / "dense",
                            w / "iter1", threads=1)


# ----------------------------------------------------------------------------------------------- parent

def digits_dense() -> Path:
    from workflow_overhead import dense_dir

    return dense_dir()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", default="10000,40000")
    ap.add_argument("--archs", default="resnet20,vgg16")
    ap.add_argument("--cifar-images", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "flows":
            child_flows(rest[0], int(rest[1]))
        else:
            child_cifar_job(rest[0], rest[1], int(rest[2]))
        return
    SCRATCH.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    lines = []
    py = sys.executable

    torch_mb, _ = run_measured([py, "-c", "import torch"])
    print(f"import torch alone: peak RSS {torch_mb:.0f} MiB")

    dense = digits_dense()
    out = SCRATCH / "mem_digits"
    shutil.rmtree(out, ignore_errors=True)
    cfg = SCRATCH / "mem_default.yaml"
    cfg.write_text(yaml.safe_dump(default_config()))
    digits_mb, _ = run_measured([tool("infcop"), "imp-iteration", "--config", cfg, "--dataset", "digits", "--arch",
                                 "small_cnn", "--seed", "0", "--method", "ciap", "--iteration", "1", "--dense", dense,
                                 "--previous", dense, "--threads", "1", "--out", out])
    shutil.rmtree(out, ignore_errors=True)
    print(f"infcop imp-iteration digits/small_cnn: peak RSS {digits_mb:.0f} MiB")
    lines.append(result("memory_imp_iteration_digits", f"{digits_mb:.0f} MiB peak RSS "
                        f"({digits_mb - torch_mb:+.0f} MiB over `import torch` alone, {torch_mb:.0f} MiB)"))

    w = SCRATCH / "mem_cifar"
    shutil.rmtree(w, ignore_errors=True)
    w.mkdir(parents=True)
    n = args.cifar_images
    dense_mb, _ = run_measured([py, HERE, "--child", "job", "dense", w, n])
    cifar_mb, _ = run_measured([py, HERE, "--child", "job", "imp", w, n])
    shutil.rmtree(w, ignore_errors=True)
    data_mb = (n + 2000) * 3 * 32 * 32 * 4 / 2**20
    print(f"imp_iteration resnet20, CIFAR-shaped random data ({n} training images, {data_mb:.0f} MiB of tensors): "
          f"peak RSS {cifar_mb:.0f} MiB (its dense stage: {dense_mb:.0f} MiB)")
    lines.append(result("memory_imp_iteration_resnet20_cifar_shaped", f"{cifar_mb:.0f} MiB peak RSS "
                        f"({n} random 32x32x3 training images = {data_mb:.0f} MiB of data)"))

    sizes = [int(s) for s in args.sizes.split(",")]
    for arch in args.archs.split(","):
        runs = {size: [] for size in sizes}
        for _ in range(args.repeats):  # sizes alternated
            for size in sizes:
                _, out_text = run_measured([py, HERE, "--child", "flows", arch, size], FIXED_MMAP)
                runs[size].append(json.loads(out_text.strip().splitlines()[-1]))
        deltas = {}
        for size in sizes:
            ds = [i["delta_mb"] for i in runs[size]]
            deltas[size] = median(ds)
            info = runs[size][0]
            print(f"measure_flows {arch}, {size} training images ({info['data_mb']:.0f} MiB): RSS before "
                  f"{info['rss_before_mb']:.0f} MiB, peak delta of the call {deltas[size]:.1f} MiB (median of "
                  f"{len(ds)}, range {min(ds):.1f}-{max(ds):.1f})"
                  + ("" if info["reset"] else " (peak could not be reset: delta includes set-up)"))
        lo, hi = sizes[0], sizes[-1]
        growth = deltas[hi] - deltas[lo]
        flat = abs(growth) <= GROWTH_TOLERANCE_MB
        lines.append(result(f"memory_flows_{arch}", f"peak delta {deltas[lo]:.1f} MiB at {lo} and {deltas[hi]:.1f} "
                            f"MiB at {hi} training images ({growth:+.1f} MiB for {hi / lo:.0f}x the data)",
                            f"no growth with the data set (within {GROWTH_TOLERANCE_MB} MiB)", flat))
    print()
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
