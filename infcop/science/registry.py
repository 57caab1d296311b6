"""Registries by name, each entry with a declared parameter spec. Pruners, stop criteria, flow measures,
architectures and data sets each live in one registry; config checks, the JSON schema, tables and figure
labels read them, so adding one is one registration. Cheap to import (no torch)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import InfcopError

REQUIRED = object()  # marks a parameter without a default


@dataclass(frozen=True)
class Param:
    """One declared parameter: its kind, range or choices, and default (REQUIRED when it has none)."""
    name: str
    kind: str  # number | integer | bool | choice | string
    default: Any = REQUIRED
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple = ()
    help: str = ""
    words: tuple = ()  # literal strings accepted besides a number (e.g. 'auto')

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def optional(self) -> bool:
        """No default and not required: absent unless given (e.g. one of several alternative keys)."""
        return self.default is None

    def allowed(self) -> str:
        """What the value may be, in words, e.g. 'a number in (0, 1)'."""
        if self.words:
            return " or ".join([Param(self.name, self.kind, lo=self.lo, hi=self.hi, lo_open=self.lo_open,
                                      hi_open=self.hi_open).allowed(), *self.words])
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return ", ".join(map(str, self.choices))
        if self.kind == "string":
            return "a string"
        noun = "an integer" if self.kind == "integer" else "a number"
        if self.lo is not None and self.hi is not None:
            return (f"{noun} in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}"
                    f"{')' if self.hi_open else ']'}")
        if self.lo is not None:
            return f"{noun} {'>' if self.lo_open else '>='} {self.lo:g}"
        if self.hi is not None:
            return f"{noun} {'<' if self.hi_open else '<='} {self.hi:g}"
        return noun

    def valid(self, value) -> bool:
        if isinstance(value, str) and value in self.words:
            return True
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return any(value == c and type(value) is type(c) for c in self.choices)
        if self.kind == "string":
            return isinstance(value, str)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind == "integer" and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo):
            return False
        if self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi):
            return False
        return True

    def check(self, key: str, value) -> None:
        if not self.valid(value):
            raise InfcopError(f"config key '{key}': {self.name} must be {self.allowed()}, got {value!r}")

    def json_schema(self) -> dict:
        if self.words:
            plain = Param(self.name, self.kind, lo=self.lo, hi=self.hi, lo_open=self.lo_open, hi_open=self.hi_open)
            return {"oneOf": [plain.json_schema(), {"enum": list(self.words)}]}
        if self.kind == "bool":
            return {"type": "boolean"}
        if self.kind == "choice":
            return {"enum": list(self.choices)}
        if self.kind == "string":
            return {"type": "string"}
        out: dict = {"type": "integer" if self.kind == "integer" else "number"}
        if self.lo is not None:
            out["exclusiveMinimum" if self.lo_open else "minimum"] = self.lo
        if self.hi is not None:
            out["exclusiveMaximum" if self.hi_open else "maximum"] = self.hi
        return out


@dataclass(frozen=True)
class SpecParam(Param):
    """A parameter whose value is itself a spec of a registry (a schedule, a pruner): `resolved(key, value)`
    checks it and returns it with defaults filled in; valid() and check() both ask it."""

    def resolved(self, key: str, value) -> dict:
        raise NotImplementedError

    def valid(self, value) -> bool:
        try:
            self.resolved(self.name, value)
        except InfcopError:
            return False
        return True

    def check(self, key: str, value) -> None:
        self.resolved(key, value)


@dataclass
class Entry:
    """A registered thing: the object itself (function or class), its parameters, an optional cross-field
    check `check(params, key)` and free-form info (labels, flags)."""
    name: str
    obj: Any
    params: tuple[Param, ...] = ()
    check: Callable | None = None
    info: dict = field(default_factory=dict)

    def param_names(self) -> list[str]:
        return [p.name for p in self.params]


class Registry:
    """Names -> entries of one kind ("pruner", "stop criterion", ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, params=(), check: Callable | None = None, **info):
        """Decorator: `@PRUNERS.register("random", params=[Param("rate", "number", lo=0, hi=1, ...)])`."""
        def add(obj):
            self.add(name, obj, params, check, **info)
            return obj
        return add

    def add(self, name: str, obj, params=(), check: Callable | None = None, **info) -> Entry:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty name")
        names = [p.name for p in params]
        if "name" in names or len(set(names)) != len(names):
            raise ValueError(f"{self.kind} '{name}': parameter names must be unique and not 'name'")
        if name in self._entries and self._entries[name].obj is not obj:
            # a plugin must not silently replace a built-in (or another plugin's) entry of the same name
            raise ValueError(f"{self.kind} '{name}' is already registered; give yours another name")
        entry = Entry(name, obj, tuple(params), check, dict(info))
        self._entries[name] = entry
        return entry

    def remove(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self):
        return iter(self._entries.values())

    def get(self, name: str) -> Entry:
        if name not in self:
            raise InfcopError(f"unknown {self.kind} '{name}'; known: {', '.join(self._entries)}")
        return self._entries[name]

    def resolve(self, key: str, spec) -> dict:
        """Check `spec` ({'name': ..., params...}) against its entry: unknown keys, required ones, values,
        the entry's cross-field check. Returns the spec with every default filled in."""
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict):
            raise InfcopError(f"config key '{key}': bad value {spec!r}; allowed: a mapping with 'name' "
                              f"(one of {', '.join(self._entries)})")
        name = spec.get("name")
        if name not in self:
            raise InfcopError(f"config key '{key}.name': unknown {self.kind} '{name}'; known: "
                              f"{', '.join(self._entries)}")
        entry = self._entries[name]
        allowed = ["name", *entry.param_names()]
        unknown = sorted(set(spec) - set(allowed))
        refused = [k for k in unknown if k in entry.info.get("refuses", {})]
        if refused:  # a key other entries take, which this one cannot: say why (info `refuses`: key -> reason)
            raise InfcopError(f"config key '{key}.{refused[0]}': {self.kind} '{name}' takes no '{refused[0]}': "
                              f"{entry.info['refuses'][refused[0]]}; allowed for {self.kind} '{name}': "
                              f"{', '.join(allowed)}")
        if unknown:
            raise InfcopError(f"config key '{key}.{unknown[0]}' is unknown (a typo?); allowed for {self.kind} "
                              f"'{name}': {', '.join(allowed)}")
        out = {"name": name}
        for p in entry.params:
            if p.name in spec:
                p.check(f"{key}.{p.name}", spec[p.name])
                out[p.name] = spec[p.name]
            elif p.required:
                raise InfcopError(f"config key '{key}': {self.kind} '{name}' needs '{p.name}' ({p.allowed()})")
            elif not p.optional:
                out[p.name] = p.default
        if entry.check is not None:
            entry.check(out, key)
        return out

    def json_schema(self) -> dict:
        """oneOf over the entries: each an object with its own name and parameters."""
        alternatives = []
        for e in self:
            props = {"name": {"const": e.name}, **{p.name: p.json_schema() for p in e.params}}
            alternatives.append({"type": "object", "additionalProperties": False, "required": ["name"],
                                 "properties": props})
        return {"oneOf": alternatives}
