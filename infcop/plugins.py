"""Your own pruners, stop criteria, architectures and data sets live in your own module, which registers
them on import. Every infcop process (the Snakefile's config check and each job) imports the modules
named in the environment variable INFCOP_PLUGINS (comma-separated module names or .py file paths) and
those of installed packages' `infcop.plugins` entry points, before it reads a config."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from . import InfcopError

ENV = "INFCOP_PLUGINS"
_loaded: set[str] = set()


def _import(spec: str) -> None:
    if spec.endswith(".py"):
        path = Path(spec).resolve()
        if not path.is_file():
            raise InfcopError(f"{ENV}: plugin file '{spec}' does not exist (paths are relative to "
                              f"'{Path.cwd()}')")
        name = f"infcop_plugin_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            importlib.import_module(spec)
        except ModuleNotFoundError as exc:
            raise InfcopError(f"{ENV}: cannot import plugin module '{spec}' ({exc}); give a module on "
                              "PYTHONPATH or a .py file path") from None


def load() -> None:
    """Import every plugin once per process."""
    specs = [s.strip() for s in os.environ.get(ENV, "").split(",") if s.strip()]
    for spec in specs:
        if spec not in _loaded:
            _import(spec)
            _loaded.add(spec)
    from importlib.metadata import entry_points

    for ep in entry_points(group="infcop.plugins"):
        if ep.value not in _loaded:
            ep.load()
            _loaded.add(ep.value)
