"""Print requirements.lock: the exact version of every distribution infcop[test] needs, as installed in the
running interpreter (run by `make lock` in a fresh environment made from pyproject.toml's ranges).

A distribution required only under an environment marker (torch's CUDA wheels on Linux x86-64, ...) keeps
that marker, so the lock installs on the other platforms too; `extra == ...` parts are dropped."""
import sys
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = "infcop"
SKIP = {ROOT, "pip", "setuptools", "wheel"}


def without_extra(marker):
    """The marker's text with its `extra == "..."` clauses removed ('' when nothing is left)."""
    parts = [p.strip() for p in str(marker).split(" and ") if not p.strip().startswith("extra ==")]
    return " and ".join(parts)


def walk(root, extras):
    """{canonical name: set of marker texts ('' = needed everywhere)} over the requirement tree."""
    seen, todo = {}, [(root, tuple(extras), "")]
    while todo:
        name, extras, via = todo.pop()
        dist = metadata.distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (extras or ("",))):
                continue  # an extra we did not ask for, or a platform this interpreter is not
            marker = via or (without_extra(req.marker) if req.marker is not None else "")
            key = canonicalize_name(req.name)
            first = key not in seen
            seen.setdefault(key, set()).add(marker)
            if first:
                todo.append((req.name, tuple(req.extras), marker))
    return seen


def main():
    needed = walk(ROOT, ["test"])
    print("# Exact versions of everything infcop and its tests need (`make` installs with these as constraints).")
    print(f"# Written by `make lock` with Python {sys.version_info.major}.{sys.version_info.minor}; "
          "BENCHMARKS.md names the lock its numbers were measured with.")
    for key in sorted(needed):
        if key in SKIP:
            continue
        dist = metadata.distribution(key)
        markers = needed[key]
        marker = "" if "" in markers else sorted(markers)[0]
        line = f"{canonicalize_name(dist.metadata['Name'])}=={dist.version}"
        print(f"{line} ; {marker}" if marker else line)


if __name__ == "__main__":
    main()
