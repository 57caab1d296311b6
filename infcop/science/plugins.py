"""Your own pruners, stop criteria, architectures and data sets live in your own module, which registers
them on import. Every infcop process (the Snakefile's config check and each job) imports the modules
named in the environment variable INFCOP_PLUGINS (comma-separated module names or .py file paths) and
those of installed packages' `infcop.science.plugins` entry points, before it reads a config."""
from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from .. import InfcopError

ENV = "INFCOP_PLUGINS"
_loaded: set[str] = set()
_arch_origins: dict[str, str] = {}  # architecture name -> the plugin that registered it (module name or .py path)


def _import(spec: str) -> None:
    if spec.endswith(".py"):
        path = Path(spec).resolve()
        if not path.is_file():
            raise InfcopError(f"plugin file '{spec}' does not exist (paths are relative to '{Path.cwd()}')")
        name = f"infcop_plugin_{path.stem}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            importlib.import_module(spec)
        except ModuleNotFoundError as exc:
            raise InfcopError(f"cannot import plugin module '{spec}' ({exc}); give a module on PYTHONPATH or a "
                              ".py file path") from None


def _registering(origin: str, load) -> None:
    """Run one plugin's import and remember it as the origin of every architecture it registers: a ticket
    records it, so that infcop.load_ticket can import that plugin in a process that has not."""
    from .models import ARCHS

    before = set(ARCHS.names())
    load()
    _arch_origins.update({name: origin for name in set(ARCHS.names()) - before})


def import_plugin(spec: str) -> None:
    """Import one plugin (a module name or a .py file path), once per process."""
    if spec not in _loaded:
        # a file is recorded by its absolute path: a ticket may be loaded from another working directory
        _registering(str(Path(spec).resolve()) if spec.endswith(".py") else spec, lambda: _import(spec))
        _loaded.add(spec)


def arch_plugin(name: str) -> str | None:
    """The plugin that registered architecture `name`, as import_plugin takes it; None for infcop's own."""
    return _arch_origins.get(name)


def load() -> None:
    """Import every plugin once per process."""
    specs = [s.strip() for s in os.environ.get(ENV, "").split(",") if s.strip()]
    for spec in specs:
        try:
            import_plugin(spec)
        except InfcopError as exc:
            raise InfcopError(f"{ENV}: {exc}") from None
    from importlib.metadata import entry_points

    for ep in entry_points(group="infcop.science.plugins"):
        if ep.value not in _loaded:
            _registering(ep.module, ep.load)
            _loaded.add(ep.value)
