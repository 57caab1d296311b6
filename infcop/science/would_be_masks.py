"""Would-be masks, the signal of mask-stability stops (Early-Bird; infcop.science.stopping.MaskStable): the mask
the method's pruner would choose each epoch and its distances to the last epochs', recorded by the
training loop (infcop.science.training) in the epoch's record."""
from __future__ import annotations

import time

import torch


class WouldBeMasks:
    """Early-Bird's stop signal: every epoch, the mask the method's pruner would choose from the weights as
    they are now, and its distances (infcop.science.stopping.MaskStable) to each of the last `window` epochs'
    would-be masks, most recent first, in the record: `mask_distances` over all mask entries (Early-Bird's),
    `mask_distances_removed` over the weights the two would remove; `mask_distance`: Early-Bird's to the
    previous epoch's. Its seconds are recorded: the method pays for them."""

    def __init__(self, pruner: dict, window: int, seed: int = 0, recent: list | None = None):
        self.pruner, self.window, self.seed = pruner, window, seed
        self.recent = list(recent or [])

    @staticmethod
    def distance(a, b, alive: int) -> float:
        """|a xor b| over the weights the two masks would remove (of `alive` survivors)."""
        removed = (alive - int(a.sum())) + (alive - int(b.sum()))
        return int((a ^ b).sum()) / removed if removed else 0.0

    @staticmethod
    def hamming(a, b) -> float:
        """Early-Bird's `cal_dist`: the share of all mask entries where the two masks differ."""
        return int((a ^ b).sum()) / a.numel()

    def observe(self, model, masks: dict, rec: dict) -> None:
        from .pruners import prune

        t0 = time.perf_counter()
        now = prune(model, masks, self.pruner, seed=self.seed)
        flat = torch.cat([now[k].flatten() for k in sorted(now)])
        alive = int(sum(int(m.sum()) for m in masks.values()))
        olds = list(reversed(self.recent))
        self.recent = (self.recent + [flat])[-self.window:]
        rec["mask_distances"] = [self.hamming(flat, old) for old in olds]
        rec["mask_distances_removed"] = [self.distance(flat, old, alive) for old in olds]
        rec["mask_distance"] = rec["mask_distances"][0] if olds else float("nan")
        rec["mask_seconds"] = time.perf_counter() - t0
