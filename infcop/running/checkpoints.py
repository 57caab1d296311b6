"""Atomic writes and validated, weights-only loads of models, epoch checkpoints and metrics. Cheap to
import (torch loads when a checkpoint is), so that tables and figures jobs never import it."""
from __future__ import annotations

import errno
import glob
import json
import logging
import os
import re
import shlex
import socket
import tempfile
from pathlib import Path

from .. import InfcopError

log = logging.getLogger("infcop")

MODEL_FORMAT = "infcop-model/1"
EPOCH_FORMAT = "infcop-epoch/1"
TICKET_FORMAT = "infcop-ticket/2"
# formats this version no longer reads: the old format -> (the one that replaced it, why and what to do)
OUTDATED = {"infcop-ticket/1": (TICKET_FORMAT, "written before tickets recorded their input normalisation (it "
                                               "cannot take raw inputs); re-export it with `infcop ticket`")}


def current_umask() -> int:
    """The process's umask (read when needed: a warm-started job gets its caller's)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _atomic(path: Path, write) -> None:
    """Write `path` through a temp file beside it, then rename: readers see the old file or the whole new
    one, never a part. `write` gets the open binary file. Each writer's temp file carries its pid and host,
    so a writer never deletes another live writer's temp file, only those left by dead processes of this
    host. A full disk (or quota) is reported by path; the old file is left as it was."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_dead_temps(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}@{_HOST}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        _raise_if_full(exc, path)
        raise
    f = _Recording(os.fdopen(fd, "wb"))
    try:
        with f:
            os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; results are meant to be shared
            write(f)
            if os.environ.get("INFCOP_KILL_AT"):
                _maybe_die_halfway(f, path)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        # torch.save wraps the file's OSError in a RuntimeError; the recorded one says what happened
        _raise_if_full(f.error or exc, path)
        raise


_HOST = socket.gethostname().replace("/", "_")
_FULL = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}


def _raise_if_full(exc: BaseException, path: Path) -> None:
    if isinstance(exc, OSError) and exc.errno in _FULL:
        raise InfcopError(f"{_FULL[exc.errno]} at '{path}': free space there (or move the results to a "
                          "larger disk) and run again; the file was not written and its old version, if "
                          "any, is unchanged") from None


class _Recording:
    """A file that remembers the OSError its write raised (torch re-raises it as a RuntimeError)."""

    def __init__(self, f):
        self._f, self.error = f, None

    def write(self, data):
        try:
            return self._f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self._f.close()
        except OSError as err:
            self.error = self.error or err
            if exc[0] is None:
                raise
        return False


def _remove_dead_temps(path: Path) -> None:
    """Temp files of `path` left by killed writers: only those of dead processes on this host go (a live
    writer's temp file, or another host's, is never touched)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)@(.+)\.[^.]+\.tmp")
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        m = pattern.fullmatch(stale.name)
        if m and m.group(2) == _HOST and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            stale.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


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
        raise InfcopError(f"'{path}' is not valid JSON (cut short or corrupt?): {exc}; {rebuild_hint(path)}") from None


def load_torch(path, expect_format: str, map_location="cpu") -> dict:
    """weights_only load; anything else than an infcop file of `expect_format` is refused by name."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise InfcopError(f"missing checkpoint '{path}'")
    # An epoch checkpoint that is unusable is ignored (the stage restarts); any other file is a result
    # that a rerun of the job that wrote it rebuilds.
    hint = "" if expect_format == EPOCH_FORMAT else f"; {rebuild_hint(path)}"
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise InfcopError(f"'{path}' is not a readable checkpoint (cut short or corrupt?): "
                          f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{hint}") from None
    if not isinstance(obj, dict) or obj.get("format") != expect_format:
        got = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        if got in OUTDATED and OUTDATED[got][0] == expect_format:
            raise InfcopError(f"'{path}' is an {got} file, {OUTDATED[got][1]}, or {rebuild_hint(path)}")
        raise InfcopError(f"'{path}' is not an {expect_format} checkpoint (found {got!r}){hint}")
    return obj


def rebuild_hint(path) -> str:
    """How to recover from a corrupt result file: rerun the job that wrote it (and what depends on it)."""
    return f"rebuild it and everything made from it with `snakemake --forcerun {shlex.quote(str(path))}`"


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


ARCH_ARGS = ("in_channels", "num_classes", "image_size")  # what infcop.science.models.build_model builds a network from


def build_from_record(obj: dict, device="cpu", arch: dict | None = None):
    """(model, masks) of a record; `arch` ({'name', 'args'}, a ticket's) defaults to the record's meta."""
    from ..science.models import build_model

    meta = obj["meta"]
    arch = arch or {"name": meta["arch"], "args": {k: meta[k] for k in ARCH_ARGS}}
    model = build_model(arch["name"], **arch["args"])
    try:
        model.load_state_dict(obj["state"])
    except RuntimeError as exc:
        raise InfcopError(f"checkpoint weights do not fit arch '{arch['name']}': {str(exc).splitlines()[0]}") from None
    return model.to(device), {k: v.to(device) for k, v in obj["masks"].items()}


def load_ticket(path, device="cpu"):
    """(model, masks, meta) of an exported ticket. `model` takes raw inputs: it standardises them as its
    training data was, then runs the architecture (`model.net`); in eval mode, masked weights already zero.
    `masks` is keyed by `model.net`'s parameter names. `meta` holds the architecture, the normalisation,
    the level and the recipe. An architecture from a plugin is built after importing that plugin."""
    from ..science.nets import Standardised

    obj = load_torch(path, TICKET_FORMAT)
    meta = obj["meta"]
    arch, norm = meta["architecture"], meta["normalisation"]
    _import_arch_plugin(arch, path)
    net, masks = build_from_record(obj, device, arch)
    model = Standardised(net, norm["mean"].to(device), norm["std"].to(device))
    return model.eval(), masks, meta


def _import_arch_plugin(arch: dict, path) -> None:
    """Import the plugin that registered the ticket's architecture, when this process does not know it yet."""
    from ..science.models import ARCHS
    from ..science.plugins import import_plugin

    plugin = arch.get("plugin")
    if not plugin or arch["name"] in ARCHS:
        return
    try:
        import_plugin(plugin)
    except Exception as exc:  # noqa: BLE001 - whatever the plugin raises, say which plugin and how to fix it
        raise InfcopError(f"ticket '{path}': its architecture '{arch['name']}' comes from plugin '{plugin}', which "
                          f"cannot be imported ({type(exc).__name__}: {exc}); install that module or put it on "
                          "PYTHONPATH (a .py plugin: restore the file at that path)") from None


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
