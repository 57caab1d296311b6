"""Installs that reproduce: the environment `make` builds holds exactly the versions of requirements.lock,
and BENCHMARKS.md names the lock its numbers were measured with."""
import hashlib
import re
import subprocess
import sys

from conftest import ROOT

LOCK = ROOT / "requirements.lock"


def _pins(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def test_the_environment_holds_exactly_the_locked_versions():
    """What ci/write_lock.py reads from this environment (every distribution infcop[test] needs, with its
    version) is the lock, line for line: `make` installed from it, and nothing it needs is missing from it."""
    here = subprocess.run([sys.executable, str(ROOT / "ci" / "write_lock.py")], capture_output=True, text=True,
                          check=True).stdout
    locked = _pins(LOCK.read_text())
    assert locked == _pins(here)
    names = {re.split(r"[=;]", pin)[0] for pin in locked}
    assert {"torch", "numpy", "pandas", "scipy", "snakemake", "mnist1d", "pytest", "snakefmt"} <= names
    assert all(re.fullmatch(r"[a-z0-9-]+==[^ ;]+( ; .+)?", pin) for pin in locked), "exact versions only"


def test_make_installs_from_the_lock_and_benchmarks_name_it():
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install --quiet -c requirements.lock -e '.[test]'" in makefile
    assert re.search(r"^\$\(VENV\)/\.installed: .*requirements\.lock", makefile, re.M)  # a new lock reinstalls
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    assert f"`requirements.lock` sha256 `{digest}`" in (ROOT / "BENCHMARKS.md").read_text(), \
        "the lock changed: rerun the benchmarks and name the new lock in BENCHMARKS.md"
