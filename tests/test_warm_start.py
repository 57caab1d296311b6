"""Warm start (infcop.running.warm_start): a command sent to the server runs in a forked child exactly as in its
own process (working directory, environment, umask, streams, exit status, signals, thread counts), dies
with its caller, and falls back to running in process when there is no server or it refuses. Only the
owner's jobs run: another uid, a wrong token, a foreign server, slow or malformed requests are refused
and run nothing, and never stop the server."""
import ast
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from infcop.running import warm_start
from workflow_helpers import BIN, ROOT, env

# A plugin (INFCOP_PLUGINS loads it first thing in `infcop`) that reports where it runs, then acts.
PROBE = '''
import json, os, signal, sys, time
report = {"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(), "x": os.environ.get("PROBE_X"),
          "umask": os.umask(0), "leaked": sorted(k for k in os.environ if k.startswith("INFCOP_WARM_START_"))}
import infcop
report["infcop"] = os.path.realpath(infcop.__file__)
act = os.environ.get("PROBE_ACT", "")
if act in ("threads", "context"):
    # the libraries the warm-start process preloads, so that both sides hold the same thread pools (scipy
    # and scikit-learn bring OpenMP and BLAS libraries of their own): each pool's count, as a multiset
    import torch, threadpoolctl, scipy.stats, sklearn.datasets
    report["threads"] = {"torch": torch.get_num_threads(),
                         "pools": sorted([i["internal_api"], i["num_threads"]] for i in threadpoolctl.threadpool_info())}
if act == "context":  # what the kernel says this process runs inside, and the descriptors it holds
    from infcop.running import process_context
    report["context"] = process_context.read(0).as_dict()
    report["fds"] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            report["fds"][fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    if os.environ.get("PROBE_HOLD"):
        time.sleep(float(os.environ["PROBE_HOLD"]))
open(os.environ["PROBE_OUT"], "w").write(json.dumps(report))
print("to stdout"); print("to stderr", file=sys.stderr)
if act == "exit":
    sys.exit(7)
if act == "signal":
    os.kill(os.getpid(), signal.SIGUSR1)
if act == "sleep":
    time.sleep(120)
if act == "finish_late":  # works a while, then writes its output and exits 7
    time.sleep(float(os.environ["PROBE_SLEEP"]))
    open(os.environ["PROBE_OUT"] + ".done", "w").write("all")
    sys.exit(7)
'''
OTHER_UID = 54321  # no such user here: an unprivileged stranger


def _start(tmp_path_factory, name="server", **kwargs):
    log = tmp_path_factory.mktemp(name) / "warm-start.log"
    handle = warm_start.start(str(log), export=False, **kwargs)
    assert handle is not None, log.read_text() if log.exists() else "no log"
    return handle, log


def _stop(handle):
    warm_start.stop(handle)
    handle.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    handle, log = _start(tmp_path_factory)
    yield handle, log
    _stop(handle)


@pytest.fixture
def own_server(tmp_path_factory):
    """A server of the test's own (for tests that break it or change its files)."""
    handle, log = _start(tmp_path_factory, "own")
    yield handle, log
    _stop(handle)  # (a killed one's directory is tidied too)


def _probe(tmp_path, job_env, act="", wait=True, ignore=(), wrap=(), **extra):
    plugin = tmp_path / "probe.py"
    plugin.write_text(PROBE)
    (tmp_path / "c.yaml").write_text("{}")
    e = {**env(), "INFCOP_PLUGINS": str(plugin), "PROBE_OUT": str(tmp_path / "report.json"), "PROBE_X": "x y",
         "PROBE_ACT": act, **(job_env or {}), **extra}
    cmd = [*wrap, str(BIN / "infcop"), "check-config", "c.yaml"]

    def setup():
        os.umask(0o027)
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN if s in ignore else signal.SIG_DFL)

    if not wait:
        return subprocess.Popen(cmd, cwd=tmp_path, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=setup)
    return subprocess.run(cmd, cwd=tmp_path, env=e, capture_output=True, text=True, timeout=120,
                          preexec_fn=setup)


def _report(tmp_path, timeout=60):
    path = tmp_path / "report.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and path.read_text().endswith("}"):
            return json.loads(path.read_text())
        time.sleep(0.05)
    raise AssertionError("the probe never ran")


def _gone(pid, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _request(handle, **changes) -> bytes:
    body = {"token": handle.token, "argv": ["schema"], "cwd": "/", "env": {}, "umask": 0o22,
            "pgid": os.getpgid(0), "ignored": [], **warm_start.identity()}
    body.update(changes)
    return json.dumps(body).encode()


def _send(address, payload: bytes | None, fds=(0, 1, 2), header: bytes | None = None, timeout=30) -> bytes:
    """Send a raw request; the server's first reply (b"" if it hung up without one)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(address)
        head = header if header is not None else struct.pack("!I", len(payload or b""))
        try:
            socket.send_fds(s, [head], list(fds)) if fds else s.sendall(head)
            if payload:
                s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole request was read: its reply may still be there
        try:
            return s.recv(9)
        except ConnectionResetError:
            return b""


def _assert_serving(handle, tmp_path):
    r = _probe(tmp_path, handle.env)
    assert r.returncode == 0, r.stderr
    assert _report(tmp_path)["ppid"] == handle.proc.pid, "the server no longer forks jobs"
    (tmp_path / "report.json").unlink()


# ------------------------------------------------------------------------- the job, as a fresh process

def test_command_runs_forked_with_the_callers_directory_environment_umask_streams_and_status(server, tmp_path):
    handle, _ = server
    r = _probe(tmp_path, handle.env, act="exit")
    report = _report(tmp_path)
    assert report["ppid"] == handle.proc.pid  # forked by the server
    assert report["cwd"] == str(tmp_path) and report["x"] == "x y" and report["umask"] == 0o027
    assert report["leaked"] == [], "the server's address, pid or token reached the job's environment"
    assert r.returncode == 7
    assert "to stdout" in r.stdout and "to stderr" in r.stderr
    ok = _probe(tmp_path, handle.env)
    assert ok.returncode == 0 and "c.yaml: OK" in ok.stdout


def test_a_child_killed_by_a_signal_kills_its_caller_with_it(server, tmp_path):
    r = _probe(tmp_path, server[0].env, act="signal")
    assert _report(tmp_path)["ppid"] == server[0].proc.pid
    assert r.returncode == -signal.SIGUSR1


def test_signals_to_the_caller_reach_the_child(server, tmp_path):
    caller = _probe(tmp_path, server[0].env, act="sleep", wait=False)
    child = _report(tmp_path)["pid"]
    caller.send_signal(signal.SIGTERM)
    assert caller.wait(timeout=30) == -signal.SIGTERM
    assert _gone(child)


def test_signals_the_caller_ignores_its_job_ignores(server, tmp_path):
    caller = _probe(tmp_path, server[0].env, act="sleep", wait=False, ignore=(signal.SIGINT,))
    child = _report(tmp_path)["pid"]
    os.kill(child, signal.SIGINT)  # as a process started with SIGINT ignored (nohup ... &) ignores it
    caller.send_signal(signal.SIGINT)
    time.sleep(1)
    assert not _gone(child, timeout=0.5) and caller.poll() is None
    caller.send_signal(signal.SIGTERM)  # not ignored: forwarded
    assert caller.wait(timeout=30) == -signal.SIGTERM and _gone(child)


def test_the_child_dies_with_its_caller(server, tmp_path):
    caller = _probe(tmp_path, server[0].env, act="sleep", wait=False)
    child = _report(tmp_path)["pid"]
    assert child != caller.pid
    caller.kill()  # SIGKILL: nothing can be forwarded
    caller.wait(timeout=30)
    assert _gone(child), "the job outlived the process that Snakemake started"


def test_without_a_server_or_when_turned_off_the_command_runs_in_process(server, tmp_path):
    handle = server[0]
    missing = {**handle.env, warm_start.ADDRESS_ENV: str(tmp_path / "no-such-dir" / "socket")}
    r = _probe(tmp_path, missing, act="exit")
    report = _report(tmp_path)
    assert r.returncode == 7 and report["ppid"] != handle.proc.pid
    (tmp_path / "report.json").unlink()
    r = _probe(tmp_path, handle.env, act="exit", INFCOP_WARM_START="off")
    assert r.returncode == 7 and _report(tmp_path)["ppid"] != handle.proc.pid


@pytest.mark.parametrize("variables", [
    {v: "1" for v in warm_start.THREAD_VARS},  # what Snakemake gives a one-thread job
    {v: "2" for v in warm_start.THREAD_VARS},
    {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"},
    {},  # nothing set: each library's own default
], ids=["snakemake-1", "all-2", "mixed", "unset"])
def test_thread_counts_in_a_forked_job_equal_a_fresh_ones(server, tmp_path, variables):
    base = {k: v for k, v in env().items() if k not in warm_start.THREAD_VARS}
    counts = {}
    for how, extra in (("forked", server[0].env), ("fresh", {"INFCOP_WARM_START": "off"})):
        e = {**base, **variables, **extra}
        plugin = tmp_path / "probe.py"
        plugin.write_text(PROBE)
        (tmp_path / "c.yaml").write_text("{}")
        r = subprocess.run([str(BIN / "infcop"), "check-config", "c.yaml"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120, env={**e, "INFCOP_PLUGINS": str(plugin), "PROBE_ACT": "threads",
                                                        "PROBE_OUT": str(tmp_path / "report.json")})
        assert r.returncode == 0, r.stderr
        report = _report(tmp_path)
        assert (report["ppid"] == server[0].proc.pid) == (how == "forked")
        counts[how] = report["threads"]
        (tmp_path / "report.json").unlink()
    assert counts["forked"] == counts["fresh"]


# ------------------------------------------------------------------------------------ only the owner

def _stranger_python():
    exe = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    if os.geteuid() != 0:
        pytest.skip("needs root, to run an attacker as another uid with setpriv")
    if not shutil.which("setpriv") or not exe:
        pytest.skip("needs setpriv and a system python3 that another uid can run")
    return exe


ATTACK = r'''
import json, socket, struct, sys
address, request = sys.argv[1], sys.argv[2].encode()
try:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(address)
except OSError as exc:
    print(json.dumps({"connect": exc.__class__.__name__})); sys.exit()
socket.send_fds(s, [struct.pack("!I", len(request))], [0, 1, 2])
s.sendall(request)
try:
    reply = s.recv(9)
except OSError:
    reply = b""
print(json.dumps({"connect": "ok", "reply": reply[:1].decode()}))
'''


def _attack(python, handle, marker: Path, tmp_path) -> dict:
    payload = tmp_path / "x.py"
    payload.write_text(f"open({str(marker)!r}, 'w').write('ran as the owner')\n")
    payload.chmod(0o644)
    tmp_path.chmod(0o777)
    stolen_env = {"INFCOP_PLUGINS": str(payload), "PATH": os.environ.get("PATH", "")}
    request = _request(handle, token="guessed", env=stolen_env, argv=["check-config", "/dev/null"]).decode()
    r = subprocess.run(["setpriv", f"--reuid={OTHER_UID}", f"--regid={OTHER_UID}", "--clear-groups", python, "-c",
                        ATTACK, handle.address, request], capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.security
def test_another_uid_cannot_reach_the_socket_and_is_refused_by_the_kernels_word_if_it_does(own_server, tmp_path):
    python = _stranger_python()
    handle, log = own_server
    marker = tmp_path / "pwned"
    # As created: the private directory keeps the stranger out altogether.
    assert _attack(python, handle, marker, tmp_path)["connect"] == "PermissionError"
    # Opened up (a careless chmod, a shared temp directory): the server asks the kernel who calls.
    directory = os.path.dirname(handle.address)
    os.chmod(directory, 0o755)
    os.chmod(handle.address, 0o777)
    try:
        outcome = _attack(python, handle, marker, tmp_path)
    finally:
        os.chmod(directory, 0o700)
        os.chmod(handle.address, 0o755)
    assert outcome == {"connect": "ok", "reply": "R"}
    time.sleep(1)  # anything it had started would have written the marker by now
    assert not marker.exists(), "a stranger's plugin ran as the owner"
    assert f"refused uid {OTHER_UID}" in log.read_text()
    _assert_serving(handle, tmp_path)


@pytest.mark.security
def test_a_request_without_the_runs_token_runs_nothing(server, tmp_path):
    handle, log = server
    marker = tmp_path / "ran"
    payload = tmp_path / "x.py"
    payload.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    for token in ("wrong", "", handle.token[:-1]):
        reply = _send(handle.address, _request(handle, token=token, argv=["check-config", "/dev/null"],
                                               env={"INFCOP_PLUGINS": str(payload)}))
        assert reply[:1] == b"R"
    reply = _send(handle.address, json.dumps({k: v for k, v in json.loads(_request(handle)).items()
                                              if k != "token"}).encode())
    assert reply[:1] == b"R"
    time.sleep(0.5)
    assert not marker.exists()
    assert "wrong or missing token" in log.read_text()


@pytest.mark.security
def test_a_foreign_server_at_the_jobs_address_gets_nothing_and_the_job_runs_afresh(server, tmp_path):
    import tempfile

    handle = server[0]
    fake_dir = tempfile.mkdtemp(prefix="infcop-impostor-")
    fake = os.path.join(fake_dir, "socket")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(fake)
    listener.listen(4)
    got = []

    def impostor():  # answers every caller as a server would, and records what it is sent
        listener.settimeout(30)
        try:
            while True:
                conn, _ = listener.accept()
                conn.settimeout(5)
                try:
                    data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
                except OSError:
                    data, fds = b"", []
                got.append((data, len(fds)))
                try:
                    conn.sendall(struct.pack("!cq", b"P", 1) + struct.pack("!cq", b"S", 0))
                except OSError:
                    pass
                conn.close()
        except OSError:
            return

    t = threading.Thread(target=impostor, daemon=True)
    t.start()
    try:
        # The same uid but not the server this run started (the recorded pid differs).
        r = _probe(tmp_path, {**handle.env, warm_start.ADDRESS_ENV: fake}, act="exit")
        assert r.returncode == 7, "a forged exit status was believed"
        assert _report(tmp_path)["pid"] != handle.proc.pid and "refused its server" in r.stderr
        assert all(data == b"" and n == 0 for data, n in got), "the job sent the impostor its request"
        (tmp_path / "report.json").unlink()
        if os.geteuid() == 0:  # a directory another uid owns is not entered at all
            os.chown(fake_dir, OTHER_UID, OTHER_UID)
            before = len(got)
            r = _probe(tmp_path, {**handle.env, warm_start.ADDRESS_ENV: fake, warm_start.PID_ENV: str(os.getpid())},
                       act="exit")
            assert r.returncode == 7 and "not private to uid 0" in r.stderr
            assert len(got) == before
    finally:
        listener.close()
        shutil.rmtree(fake_dir, ignore_errors=True)


# ------------------------------------------------------------------------ never a stall, never a crash

@pytest.mark.faults
def test_a_slow_sender_does_not_hold_up_another_job(server, tmp_path):
    handle, log = server
    request = _request(handle)
    state = {"closed_at": None}
    started = time.monotonic()

    def trickle():  # one byte at a time, slower than any deadline per byte would notice
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(handle.address)
            s.sendall(struct.pack("!I", len(request)))
            try:
                for byte in request:
                    s.sendall(bytes([byte]))
                    time.sleep(0.5)
            except OSError:
                pass
            s.settimeout(30)
            try:
                s.recv(9)
            except OSError:
                pass
            state["closed_at"] = time.monotonic() - started

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    time.sleep(0.5)
    r = _probe(tmp_path, handle.env)
    done_at = time.monotonic() - started
    assert r.returncode == 0 and _report(tmp_path)["ppid"] == handle.proc.pid
    assert state["closed_at"] is None, "the job waited until the slow sender was cut off"
    assert done_at < warm_start.REQUEST_DEADLINE
    t.join(timeout=warm_start.REQUEST_DEADLINE + 30)
    assert state["closed_at"] is not None and state["closed_at"] < warm_start.REQUEST_DEADLINE + 10
    assert "no whole request within" in log.read_text()


@pytest.mark.faults
@pytest.mark.parametrize("case", ["list", "missing-argv", "argv-not-list", "env-values", "not-json",
                                  "oversize", "too-many-fds", "no-fds", "bool-umask", "bad-signal"])
def test_malformed_requests_are_refused_and_the_server_keeps_serving(server, tmp_path, case):
    handle, log = server
    good = json.loads(_request(handle))
    bodies = {
        "list": b"[]",
        "missing-argv": json.dumps({k: v for k, v in good.items() if k != "argv"}).encode(),
        "argv-not-list": json.dumps({**good, "argv": "schema"}).encode(),
        "env-values": json.dumps({**good, "env": {"A": 1}}).encode(),
        "not-json": b"\x00\x01{",
        "bool-umask": json.dumps({**good, "umask": True}).encode(),
        "bad-signal": json.dumps({**good, "ignored": [9]}).encode(),
    }
    if case == "oversize":
        reply = _send(handle.address, None, header=struct.pack("!I", 0xFFFFFFFF))
    elif case == "too-many-fds":
        reply = _send(handle.address, _request(handle), fds=(0, 1, 2, 0))
    elif case == "no-fds":
        reply = _send(handle.address, _request(handle), fds=())
    else:
        reply = _send(handle.address, bodies[case])
    assert reply[:1] in (b"R", b""), "a malformed request was run"
    assert handle.proc.poll() is None, "the server died of a malformed request"
    _assert_serving(handle, tmp_path)


def test_refusals_of_another_installation_are_said_once_on_the_workflows_output(tmp_path_factory, tmp_path):
    notices = tmp_path / "snakemake-stderr"
    with open(notices, "w") as stream:
        handle, log = _start(tmp_path_factory, "notices", notices=stream)
    try:
        for _ in range(2):
            assert _send(handle.address, _request(handle, version="0.0-other"))[:1] == b"R"
    finally:
        _stop(handle)
    said = notices.read_text().splitlines()
    assert len(said) == 1 and "another interpreter or infcop installation" in said[0] and "0.0-other" in said[0]
    assert log.read_text().count("another interpreter or infcop") == 2


def test_no_fork_once_cuda_is_initialised_or_when_a_job_may_use_a_gpu(tmp_path, monkeypatch):
    import torch

    sock_dir = tmp_path / "d"
    sock_dir.mkdir(mode=0o700)
    srv = warm_start.Server(str(sock_dir / "s"), "t" * 64, os.getpid(), open(os.devnull, "w"))
    srv.identity = warm_start.identity()
    try:
        body = json.dumps({**json.loads(_request(warm_start.Handle(None, "", "t" * 64)))}).encode()
        assert srv.check(body, [0, 1, 2], os.getpid())[0]["argv"] == ["schema"]
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
        with pytest.raises(warm_start.Refused, match="CUDA is initialised"):
            srv.check(body, [0, 1, 2], os.getpid())
        monkeypatch.undo()
        srv.gpu = True
        with pytest.raises(warm_start.Refused, match="GPU a job may use"):
            srv.check(body, [0, 1, 2], os.getpid())
        cpu_only = json.loads(body)
        cpu_only["env"] = {"CUDA_VISIBLE_DEVICES": ""}
        assert srv.check(json.dumps(cpu_only).encode(), [0, 1, 2], os.getpid())
    finally:
        srv.listener.close()


# ----------------------------------------------------------------------------------------- right status

@pytest.mark.faults
def test_a_job_finishes_with_its_status_and_output_when_the_server_is_killed_under_it(own_server, tmp_path):
    handle, _ = own_server
    caller = _probe(tmp_path, handle.env, act="finish_late", wait=False, PROBE_SLEEP="3")
    report = _report(tmp_path)
    assert report["ppid"] == handle.proc.pid
    handle.proc.kill()  # the OOM killer, a crash
    handle.proc.wait(timeout=30)
    assert caller.wait(timeout=60) == 7, caller.stderr.read().decode()
    assert (tmp_path / "report.json.done").read_text() == "all"
    # the next job finds no server and runs afresh
    (tmp_path / "report.json").unlink()
    r = _probe(tmp_path, handle.env, act="exit")
    assert r.returncode == 7 and _report(tmp_path)["ppid"] != handle.proc.pid


# ---------------------------------------------------------------------------------- what it imports

def test_the_server_imports_the_installed_infcop_not_a_folder_in_the_working_directory(tmp_path_factory,
                                                                                         tmp_path, monkeypatch):
    shadow = tmp_path / "checkout" / "infcop"
    shadow.mkdir(parents=True)
    marker = tmp_path / "shadow-imported"
    (shadow / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    monkeypatch.chdir(shadow.parent)
    handle, _ = _start(tmp_path_factory, "shadowed")
    monkeypatch.chdir(tmp_path)
    try:
        r = _probe(tmp_path, handle.env)
        report = _report(tmp_path)
    finally:
        _stop(handle)
    assert r.returncode == 0 and report["ppid"] == handle.proc.pid, r.stderr
    import infcop

    assert report["infcop"] == os.path.realpath(infcop.__file__)
    assert not marker.exists(), "the server imported the infcop folder of its working directory"


def test_the_server_names_its_entry_point_rather_than_importing_the_command():
    def imports(module):
        path = ROOT / "infcop" / module
        files = sorted(path.glob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
        tree = ast.Module([node for f in files for node in ast.parse(f.read_text()).body], [])
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names.add((node.module or "").split(".")[-1])
                names.update(a.name for a in node.names if not node.module)
            elif isinstance(node, ast.Import):
                names.update(a.name.split(".")[-1] for a in node.names)
        return names

    assert "warm_start" in imports("cli") and "cli" not in imports("running/warm_start")
    from infcop.running.warm_start import child

    assert child.entry_point() is __import__("infcop.cli", fromlist=["main"]).main


def test_the_server_goes_when_the_process_that_started_it_does(tmp_path):
    code = ("import sys; from infcop.running import warm_start; h = warm_start.start(sys.argv[1]); "
            "print(h.proc.pid if h else 0)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "log")], capture_output=True, text=True,
                         timeout=60, env=env())
    pid = int(out.stdout)
    assert pid > 0, out.stderr
    assert _gone(pid, timeout=120), "the server outlived the workflow that started it"


def test_the_socket_lives_in_a_private_directory_and_goes_with_the_server(tmp_path_factory):
    handle, _ = _start(tmp_path_factory, "private")
    directory = os.path.dirname(handle.address)
    info = os.lstat(directory)
    assert info.st_uid == os.getuid() and info.st_mode & 0o777 == 0o700
    assert warm_start.private_socket_problem(handle.address) is None
    assert str(handle.address) not in Path(f"/proc/{handle.proc.pid}/cmdline").read_text()
    _stop(handle)
    assert not os.path.exists(directory)


def _signal_mask(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def test_a_server_stopped_as_soon_as_it_is_ready_still_tidies_its_directory(tmp_path_factory):
    # The ready byte is the promise that a stop is handled: the handlers must be in by then (a SIGTERM
    # that found the default action killed the server before it removed its private directory).
    for attempt in range(3):
        handle, _ = _start(tmp_path_factory, f"quick{attempt}")
        pid = handle.proc.pid
        caught, ignored = _signal_mask(pid, "SigCgt"), _signal_mask(pid, "SigIgn")
        _stop(handle)
        assert caught >> (signal.SIGTERM - 1) & 1, "SIGTERM was not handled when the server said it was ready"
        assert ignored >> (signal.SIGINT - 1) & 1, "SIGINT was not ignored when the server said it was ready"
        assert not os.path.exists(os.path.dirname(handle.address))


def test_the_workflow_tidies_the_directory_of_a_server_that_was_killed(tmp_path_factory):
    handle, _ = _start(tmp_path_factory, "killed")
    handle.proc.kill()  # no chance to tidy up itself
    handle.proc.wait(timeout=30)
    directory = os.path.dirname(handle.address)
    assert os.path.exists(directory)
    warm_start.stop(handle)  # what the workflow does at its end
    assert not os.path.exists(directory)
