"""Atomic writes and validated, weights-only loads of models, epoch checkpoints and metrics. Cheap to
import (torch loads when a checkpoint is), so that tables and figures jobs never import it."""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from . import InfcopError

log = logging.getLogger("infcop")

MODEL_FORMAT = "infcop-model/1"
EPOCH_FORMAT = "infcop-epoch/1"
TICKET_FORMAT = "infcop-ticket/1"
_UMASK = os.umask(0)
os.umask(_UMASK)


def _atomic(path: Path, write) -> None:
    """Write `path` through a temp file beside it, then rename: readers see the old file or the whole new
    one, never a part. `write` gets the open binary file. Temp files of earlier killed writes of the
    same path are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        with os.fdopen(fd, "wb") as f:
            write(f)
            if os.environ.get("INFCOP_KILL_AT"):
                _maybe_die_halfway(f, path)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _maybe_die_halfway(f, path: Path) -> None:
    from . import faults

    if faults.fires("write", path):
        f.flush()
        f.truncate(max(f.tell() // 2, 1))  # what a kill in the middle of the write leaves behind
        faults.die()


def atomic_write(path, write) -> None:
    _atomic(Path(path), write)


def save_torch(obj, path) -> None:
    import torch

    _atomic(Path(path), lambda f: torch.save(obj, f))


def save_json(obj, path) -> None:
    _atomic(Path(path), lambda f: f.write((json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()))


def save_text(text: str, path) -> None:
    _atomic(Path(path), lambda f: f.write(text.encode()))


def load_json(path) -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InfcopError(f"missing file '{path}'") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InfcopError(f"'{path}' is not valid JSON (cut short or corrupt?): {exc}") from None


def load_torch(path, expect_format: str, map_location="cpu") -> dict:
    """weights_only load; anything else than an infcop file of `expect_format` is refused by name."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InfcopError(f"missing checkpoint '{path}'")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise InfcopError(f"'{path}' is not a readable checkpoint (cut short or corrupt?): "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    if not isinstance(obj, dict) or obj.get("format") != expect_format:
        got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise InfcopError(f"'{path}' is not an {expect_format} checkpoint (found {got!r})")
    return obj


def load_model_file(path, dataset: str | None = None, arch: str | None = None, map_location="cpu") -> dict:
    obj = load_torch(path, MODEL_FORMAT, map_location)
    for key, want in (("dataset", dataset), ("arch", arch)):
        if want is not None and obj["meta"].get(key) != want:
            raise InfcopError(f"checkpoint '{path}' is for {key} '{obj['meta'].get(key)}', not '{want}'")
    return obj


def model_record(model, masks, meta: dict) -> dict:
    return {"format": MODEL_FORMAT, "meta": meta,
            "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "masks": {k: v.cpu() for k, v in masks.items()}}


def build_from_record(obj: dict, device="cpu"):
    from .models import build_model

    meta = obj["meta"]
    model = build_model(meta["arch"], meta["in_channels"], meta["num_classes"], meta["image_size"])
    try:
        model.load_state_dict(obj["state"])
    except RuntimeError as exc:
        raise InfcopError(f"checkpoint weights do not fit arch '{meta['arch']}': {str(exc).splitlines()[0]}") from None
    return model.to(device), {k: v.to(device) for k, v in obj["masks"].items()}


def load_ticket(path, device="cpu"):
    """(model, masks, meta) of an exported sparse network; masked weights are already zero."""
    obj = load_torch(path, TICKET_FORMAT)
    model, masks = build_from_record(obj, device)
    return model, masks, obj["meta"]


class EpochCheckpoint:
    """The in-progress epoch checkpoint of one stage (beside its declared outputs). It is only resumed
    when its fingerprint (the stage's exact inputs and settings) matches; a cut-short or foreign one is
    ignored with a warning and the stage starts afresh."""

    def __init__(self, path, fingerprint: str):
        self.path, self.fingerprint = Path(path), fingerprint

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            obj = load_torch(self.path, EPOCH_FORMAT)
        except InfcopError as exc:
            log.warning("ignoring unusable epoch checkpoint, starting this stage afresh: %s", exc)
            return None
        if obj.get("fingerprint") != self.fingerprint:
            log.warning("epoch checkpoint '%s' belongs to other inputs or settings; starting afresh", self.path)
            return None
        return obj

    def save(self, state: dict) -> None:
        save_torch({"format": EPOCH_FORMAT, "fingerprint": self.fingerprint, **state}, self.path)
