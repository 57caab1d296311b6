"""The checks a whole request passes before its job is forked: its shape (bounded nesting before the JSON
parser sees it, field types, valid UTF-8 without NUL), the run's token, the same interpreter and infcop
installation, no CUDA in the way, and a caller's process context (read from the kernel) that a forked
child can reproduce. Any failure raises Refused."""
from __future__ import annotations

import hmac
import json
import re
import sys

from .. import process_context
from .log import Refused
from .protocol import FIELDS, SIGNALS, TOKEN_LENGTH

# A request is one mapping holding two lists and one mapping: 8 brackets outside its strings. A bound on
# them, checked before parsing, bounds the nesting that the parser would otherwise recurse into.
MAX_BRACKETS = 16
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _clean(text: str, what: str) -> None:
    """A string the child can pass to the system: valid UTF-8 (no lone surrogate) and no NUL."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(f"{what} is not valid UTF-8") from None
    if "\0" in text:
        raise Refused(f"{what} holds a NUL character")


def check(body: bytes, fds: list, pid: int, token: str, identity: dict,
          gpu: bool) -> tuple[dict, process_context.Context]:
    """The request, and the context (read from the kernel) that its child must take on; Refused if any
    check fails. `token`: the run's; `identity`: the server's interpreter and installation; `gpu`: whether
    a job may use a GPU on this machine."""
    request = _parse(body, token)
    if len(fds) != 3:
        raise Refused(f"{len(fds)} file descriptors sent, 3 expected")
    other = {k: request[k] for k in identity if request[k] != identity[k]}
    if other:
        raise Refused("a job of another interpreter or infcop installation ("
                      + ", ".join(f"{k} {v!r}, here {identity[k]!r}" for k, v in other.items()) + ")",
                      "another installation")
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        raise Refused("CUDA is initialised in the warm-start process: a fork would inherit it", "cuda")
    if gpu and request["env"].get("CUDA_VISIBLE_DEVICES", "x").strip() not in ("", "-1"):
        raise Refused("this machine has a GPU a job may use (CUDA_VISIBLE_DEVICES='' keeps jobs on the "
                      "CPU and warm)", "gpu")
    try:
        caller = process_context.read(pid)
        problems = process_context.plan(caller, process_context.read(0))
    except process_context.ContextError as exc:
        raise Refused(str(exc), "context") from None
    if problems:
        raise Refused("the job runs inside what a forked child cannot reproduce: " + "; ".join(problems),
                      "confinement")
    return request, caller


def _parse(body: bytes, expected_token: str) -> dict:
    """The request's shape and token: bounded nesting, JSON, the token, the fields' types and strings."""
    brackets = sum(map(_STRINGS.sub(b"", body).count, (b"[", b"{")))
    if brackets > MAX_BRACKETS // 2:
        raise Refused(f"{brackets} lists and mappings; a request has 4")
    try:
        request = json.loads(body)
    except ValueError:
        raise Refused("not JSON") from None
    if not isinstance(request, dict):
        raise Refused(f"a request must be a mapping, not {type(request).__name__}")
    token = request.get("token")
    if not (isinstance(token, str) and len(token) == TOKEN_LENGTH and token.isascii()
            and hmac.compare_digest(token.encode("ascii"), expected_token.encode("ascii"))):
        raise Refused("wrong or missing token", "wrong token")
    for key, kind in FIELDS.items():
        if not isinstance(request.get(key), kind) or isinstance(request.get(key), bool):
            raise Refused(f"'{key}' must be {kind.__name__}, got {type(request.get(key)).__name__}")
    if not all(isinstance(a, str) for a in request["argv"]):
        raise Refused("argv must be a list of strings")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in request["env"].items()):
        raise Refused("env must map strings to strings")
    for what, text in [("cwd", request["cwd"]), *((f"argument {i}", a) for i, a in enumerate(request["argv"])),
                       *((f"variable {k[:40]!r}", k + v) for k, v in request["env"].items()),
                       *((key, request[key]) for key in ("python", "infcop", "version"))]:
        _clean(text, what)
    if not 0 <= request["umask"] <= 0o777:
        raise Refused("umask out of range")
    if not all(isinstance(s, int) and s in {int(x) for x in SIGNALS} for s in request["ignored"]):
        raise Refused("ignored must list signal numbers")
    return request
