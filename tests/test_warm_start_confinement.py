"""Warm start, what its caller put a job in and what no request can do to the server: a forked job runs
inside exactly the context a fresh process would (namespaces, capabilities, no_new_privs, limits, nice
value, CPU set and the thread counts that follow), or is refused and runs afresh; malformed requests are
refused and leak nothing; descriptors, a full disk and a flood of connections never break the server;
refusals reach Snakemake's output; no path planted by another user is followed. Linux only."""
import json
import os
import resource
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from infcop.running import process_context, warm_start
from test_warm_start import _probe, _report, _request, _send, _start, _stop
from workflow_helpers import BIN, ROOT, env, workdir

REQUIRED = os.environ.get("INFCOP_REQUIRE_WRAPPERS") == "1"  # CI: a wrapper that cannot run fails the test


def _skip_or_fail(why: str):
    if REQUIRED:
        pytest.fail(f"{why} (INFCOP_REQUIRE_WRAPPERS=1)")
    pytest.skip(why)


# The wrappers people put jobs in, and whether the warm start can reproduce them in a forked child.
WRAPPERS = {
    "capabilities": (["setpriv", "--bounding-set=-all", "--inh-caps=-all"], "refused"),
    "network namespace": (["unshare", "-rn"], "refused"),
    "no_new_privs": (["setpriv", "--no-new-privs"], "forked"),
    "limits": (["prlimit", "--nofile=64", "--as=16000000000"], "forked"),
    "nice": (["nice", "-n", "10"], "forked"),
    "cpu set": (["taskset", "-c", "0"], "forked"),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    handle, log = _start(tmp_path_factory, "confinement")
    yield handle, log
    _stop(handle)


def _runnable(wrap: list[str]) -> None:
    if shutil.which(wrap[0]) is None:
        _skip_or_fail(f"no {wrap[0]} on this machine")
    r = subprocess.run([*wrap, "true"], capture_output=True, text=True)
    if r.returncode != 0:
        _skip_or_fail(f"{' '.join(wrap)} cannot run here: {r.stderr.strip()}")
    if wrap[0] == "taskset" and len(os.sched_getaffinity(0)) < 2:
        _skip_or_fail("one CPU only: a CPU set of one changes nothing")


def _run(tmp_path: Path, job_env: dict, wrap: list[str], **extra) -> dict:
    (tmp_path / "report.json").unlink(missing_ok=True)
    r = _probe(tmp_path, job_env, act="context", wrap=wrap, **extra)
    assert r.returncode == 0, r.stderr
    return _report(tmp_path)


@pytest.mark.security
@pytest.mark.parametrize("name", list(WRAPPERS))
def test_a_forked_job_runs_inside_what_its_caller_was_put_in_or_runs_afresh(server, tmp_path, name):
    handle, log = server
    wrap, expected = WRAPPERS[name]
    _runnable(wrap)
    fresh = _run(tmp_path, {"INFCOP_WARM_START": "off"}, wrap)
    warm = _run(tmp_path, handle.env, wrap)
    forked = warm["ppid"] == handle.proc.pid
    assert forked == (expected == "forked"), f"{name}: expected {expected}, log:\n{log.read_text()[-2000:]}"
    plain = _run(tmp_path, {"INFCOP_WARM_START": "off"}, [])
    assert process_context.mismatch(_context(plain), _context(fresh)), f"{name} changed nothing: no test"
    # A new namespace gets a new number each time: the job must be in one of its own, not in the server's.
    for what in [w for w in fresh["context"]["fixed"] if w.endswith("namespace")]:
        own = fresh["context"]["fixed"][what] != plain["context"]["fixed"][what]
        assert (warm["context"]["fixed"][what] != plain["context"]["fixed"][what]) == own, what
        fresh["context"]["fixed"][what] = warm["context"]["fixed"][what] = None
    assert process_context.mismatch(_context(fresh), _context(warm)) == []
    assert warm["threads"] == fresh["threads"]
    if expected == "refused":
        assert "cannot reproduce" in log.read_text()


def _context(report: dict) -> process_context.Context:
    c = report["context"]
    return process_context.Context(
        fixed=tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in c["fixed"].items()),
        no_new_privs=c["no_new_privs"], limits=tuple((n, s, h) for n, (s, h) in c["limits"].items()),
        nice=c["nice"], affinity=frozenset(c["affinity"]), oom_score_adj=c["oom_score_adj"], ioprio=c["ioprio"])


def test_the_plan_refuses_what_a_child_cannot_reproduce_and_applies_the_rest():
    me = process_context.read(0)
    fixed = dict(me.fixed)
    other_net = process_context.Context(**{**me.__dict__, "fixed": tuple({**fixed, "net namespace": "net:[1]"}.items())})
    assert any("net namespace" in p for p in process_context.plan(other_net, me))
    stricter = process_context.Context(**{**me.__dict__, "nice": me.nice + 5, "no_new_privs": 1})
    assert process_context.plan(stricter, me) == []
    laxer = process_context.Context(**{**me.__dict__, "no_new_privs": 0})
    assert "no_new_privs" in " ".join(process_context.plan(laxer, process_context.Context(**{**me.__dict__,
                                                                                        "no_new_privs": 1})))


# ---------------------------------------------------------------------------- every failure is a refusal

def _fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.faults
@pytest.mark.parametrize("case", ["deep-nesting", "lone-surrogate-token", "lone-surrogate-argv", "nul-in-cwd"])
def test_malformed_requests_get_a_refusal_and_leave_no_descriptor_open(server, tmp_path, case):
    handle, log = server
    good = json.loads(_request(handle))
    bodies = {
        "deep-nesting": b"[" * 200_000 + b"]" * 200_000,  # 400 KB, no token needed to reach the parser
        "lone-surrogate-token": json.dumps({**good, "token": "\ud800" + good["token"][1:]}).encode(),
        "lone-surrogate-argv": json.dumps({**good, "argv": ["schema", "\udfff"]}).encode(),
        "nul-in-cwd": json.dumps({**good, "cwd": "/tmp\u0000x"}).encode(),
    }
    _send(handle.address, _request(handle, token="0" * 64))  # one refusal first: the count is settled
    time.sleep(0.2)
    before = _fd_count(handle.proc.pid)
    for _ in range(3):
        assert _send(handle.address, bodies[case])[:1] == b"R", f"no refusal for {case}"
    time.sleep(0.2)
    assert _fd_count(handle.proc.pid) <= before, "a refused request left descriptors open in the server"
    assert handle.proc.poll() is None


@pytest.mark.faults
def test_a_pending_callers_streams_are_not_held_by_a_concurrent_job(server, tmp_path):
    handle, _ = server
    read_end, write_end = os.pipe()
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.connect(handle.address)
    try:  # a header with its three descriptors, then nothing: the request stays pending for its deadline
        socket.send_fds(stalled, [b"\0\0\1\0"], [write_end, write_end, write_end])
        os.close(write_end)
        pipe = os.readlink(f"/proc/self/fd/{read_end}")
        time.sleep(0.3)
        report = _run(tmp_path, handle.env, [])
        assert report["ppid"] == handle.proc.pid
        assert pipe not in report["fds"].values(), "a job forked meanwhile holds another caller's pipe"
    finally:
        stalled.close()
        os.close(read_end)


# ------------------------------------------------------------------------------- calm under pressure

@pytest.mark.faults
def test_out_of_descriptors_the_server_backs_off_logs_calmly_and_still_serves(tmp_path_factory, tmp_path):
    handle, log = _start(tmp_path_factory, "descriptors")
    idle = []
    try:
        deadline = time.monotonic() + 120  # accept() runs once the libraries are in (seconds on a busy machine)
        while "preloaded" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        resource.prlimit(handle.proc.pid, resource.RLIMIT_NOFILE, (24, 24))  # below the cap on pending requests
        size0 = log.stat().st_size
        for _ in range(100):  # idle owners' connections: more than the server has descriptors for
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(handle.address)
            except BlockingIOError:
                pass
            except OSError:
                s.close()
                break
            idle.append(s)
        time.sleep(3)
        lines = log.read_text()[size0:].count("\n") if log.stat().st_size >= size0 else 0
        assert lines < 3 * 25, f"{lines} log lines in 3 s"
        assert "pausing" in log.read_text(), "accept() never ran out of descriptors: no test"
        r = _probe(tmp_path, handle.env)  # refused (runs afresh) or served once descriptors free up
        assert r.returncode == 0, r.stderr
        assert handle.proc.poll() is None, "the server died out of descriptors"
    finally:
        for s in idle:
            s.close()
        _stop(handle)


@pytest.mark.faults
def test_a_full_disk_under_the_log_does_not_stop_the_server(tmp_path_factory, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)], capture_output=True, text=True)
    if r.returncode != 0:
        _skip_or_fail(f"cannot mount a small tmpfs here: {r.stderr.strip()}")
    try:
        log = disk / "warm-start.log"
        handle = warm_start.start(str(log), export=False)
        assert handle is not None
        try:
            filler = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
            try:  # fill the file system to the last byte
                while os.write(filler, b"x" * 512):
                    pass
            except OSError:
                pass
            finally:
                os.close(filler)
            for i in range(3):
                (tmp_path / "report.json").unlink(missing_ok=True)
                out = _probe(tmp_path, handle.env)
                assert out.returncode == 0, out.stderr
                assert _report(tmp_path)["ppid"] == handle.proc.pid, f"job {i} not forked"
            assert handle.proc.poll() is None, "the server died when its log could not be written"
        finally:
            _stop(handle)
    finally:
        subprocess.run(["umount", "-l", str(disk)])


# -------------------------------------------------------------------------------------- no path followed

@pytest.mark.security
def test_a_link_planted_at_the_logs_name_is_not_followed(tmp_path, capsys):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    log = tmp_path / "logs" / "warm-start.log"
    log.parent.mkdir()
    log.symlink_to(victim)
    assert warm_start.start(str(log), export=False) is None
    assert victim.read_text() == "precious\n"
    assert "off" in capsys.readouterr().err
    log.unlink()
    os.link(victim, log)  # a hard link: the same file under two names
    assert warm_start.start(str(log), export=False) is None
    assert victim.read_text() == "precious\n"


@pytest.mark.security
def test_stop_removes_only_the_directory_and_socket_it_made(tmp_path_factory, tmp_path):
    handle, _ = _start(tmp_path_factory, "swapped")
    handle.proc.kill()
    handle.proc.wait(timeout=30)
    directory = Path(os.path.dirname(handle.address))
    os.rename(directory, tmp_path / "moved")  # another user's swap in a world-writable, non-sticky directory
    directory.mkdir(mode=0o700)
    decoy = directory / "socket"
    decoy.write_text("not the server's")
    warm_start.stop(handle)
    assert decoy.read_text() == "not the server's" and directory.exists()
    shutil.rmtree(directory)
    shutil.rmtree(tmp_path / "moved")


# ----------------------------------------------------------------------------------------- platforms

def test_without_peer_credentials_the_warm_start_is_off_with_one_notice(tmp_path, monkeypatch, capsys):
    monkeypatch.delattr(socket, "SO_PEERCRED")
    assert warm_start.start(str(tmp_path / "log"), export=False) is None
    err = capsys.readouterr().err
    assert err.count("warm start: off") == 1 and "SO_PEERCRED" in err
    monkeypatch.setenv(warm_start.ADDRESS_ENV, str(tmp_path / "socket"))
    monkeypatch.setenv(warm_start.PID_ENV, "1")
    monkeypatch.setenv(warm_start.TOKEN_ENV, "0" * 64)
    assert warm_start.run_remote(["schema"]) is None  # runs in process, no AttributeError


# --------------------------------------------------------------------------- notices a person sees

@pytest.mark.slow
def test_a_refusal_is_said_once_in_snakemakes_own_output(tmp_path):
    """A run whose every job is wrapped (through bash's BASH_ENV) in a context the warm start cannot
    reproduce: each job runs afresh, and Snakemake's output says so once."""
    wrap = next((w for w, _ in (WRAPPERS["capabilities"], WRAPPERS["network namespace"])
                 if shutil.which(w[0]) and subprocess.run([*w, "true"], capture_output=True).returncode == 0), None)
    if wrap is None:
        _skip_or_fail("neither setpriv nor unshare can wrap a job here")
    wd = workdir(tmp_path / "wd", experiment__seeds=[0, 1])
    bash_env = tmp_path / "wrap.sh"
    bash_env.write_text(f'[ -n "$WRAPPED" ] || WRAPPED=1 exec {" ".join(wrap)} bash -c "$BASH_EXECUTION_STRING"\n')
    e = {**env(), "BASH_ENV": str(bash_env)}
    targets = [f"results/digits/small_cnn/seed{s}/dense/model.pt" for s in (0, 1)]  # two train_dense jobs
    r = subprocess.run([str(BIN / "snakemake"), "--cores", "2", *targets], cwd=wd, env=e, capture_output=True,
                       text=True, timeout=900)
    output = r.stdout + r.stderr
    assert r.returncode == 0 and all((wd / t).exists() for t in targets), output[-3000:]
    assert output.count("cannot reproduce") == 1, output[-3000:]
    assert (wd / ".snakemake" / "infcop" / "warm-start.log").read_text().count("cannot reproduce") == 2
