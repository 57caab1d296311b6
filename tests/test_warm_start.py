"""Warm start (infcop.warm_start): a command sent to the server runs in a forked child exactly as in its
own process (working directory, environment, umask, streams, exit status, signals), dies with its caller,
and falls back to running in process when there is no server or it refuses."""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infcop import warm_start
from workflow_helpers import BIN, env

# A plugin (INFCOP_PLUGINS loads it first thing in `infcop`) that reports where it runs, then acts.
PROBE = '''
import json, os, signal, sys, time
report = {"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(), "x": os.environ.get("PROBE_X"),
          "umask": os.umask(0)}
open(os.environ["PROBE_OUT"], "w").write(json.dumps(report))
print("to stdout"); print("to stderr", file=sys.stderr)
act = os.environ.get("PROBE_ACT", "")
if act == "exit":
    sys.exit(7)
if act == "signal":
    os.kill(os.getpid(), signal.SIGUSR1)
if act == "sleep":
    time.sleep(120)
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "warm-start.log"
    proc = warm_start.start(str(log))
    address = os.environ.pop(warm_start.ADDRESS_ENV)  # only the commands below use it
    yield proc, address, log
    warm_start.stop(proc)
    proc.wait(timeout=30)


def _probe(tmp_path, address, act="", wait=True, ignore=(), **extra):
    plugin = tmp_path / "probe.py"
    plugin.write_text(PROBE)
    (tmp_path / "c.yaml").write_text("{}")
    e = {**env(), "INFCOP_PLUGINS": str(plugin), "PROBE_OUT": str(tmp_path / "report.json"), "PROBE_X": "x y",
         "PROBE_ACT": act, **extra}
    if address:
        e[warm_start.ADDRESS_ENV] = address
    cmd = [str(BIN / "infcop"), "check-config", "c.yaml"]
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


def test_command_runs_forked_with_the_callers_directory_environment_umask_streams_and_status(server, tmp_path):
    proc, address, _ = server
    r = _probe(tmp_path, address, act="exit")
    report = _report(tmp_path)
    assert report["ppid"] == proc.pid  # forked by the server
    assert report["cwd"] == str(tmp_path) and report["x"] == "x y" and report["umask"] == 0o027
    assert r.returncode == 7
    assert "to stdout" in r.stdout and "to stderr" in r.stderr
    ok = _probe(tmp_path, address)
    assert ok.returncode == 0 and "c.yaml: OK" in ok.stdout


def test_a_child_killed_by_a_signal_kills_its_caller_with_it(server, tmp_path):
    r = _probe(tmp_path, server[1], act="signal")
    assert _report(tmp_path)["ppid"] == server[0].pid
    assert r.returncode == -signal.SIGUSR1


def test_signals_to_the_caller_reach_the_child(server, tmp_path):
    caller = _probe(tmp_path, server[1], act="sleep", wait=False)
    child = _report(tmp_path)["pid"]
    caller.send_signal(signal.SIGTERM)
    assert caller.wait(timeout=30) == -signal.SIGTERM
    assert _gone(child)


def test_signals_the_caller_ignores_its_job_ignores(server, tmp_path):
    caller = _probe(tmp_path, server[1], act="sleep", wait=False, ignore=(signal.SIGINT,))
    child = _report(tmp_path)["pid"]
    os.kill(child, signal.SIGINT)  # as a process started with SIGINT ignored (nohup ... &) ignores it
    caller.send_signal(signal.SIGINT)
    time.sleep(1)
    assert not _gone(child, timeout=0.5) and caller.poll() is None
    caller.send_signal(signal.SIGTERM)  # not ignored: forwarded
    assert caller.wait(timeout=30) == -signal.SIGTERM and _gone(child)


def test_the_child_dies_with_its_caller(server, tmp_path):
    caller = _probe(tmp_path, server[1], act="sleep", wait=False)
    child = _report(tmp_path)["pid"]
    assert child != caller.pid
    caller.kill()  # SIGKILL: nothing can be forwarded
    caller.wait(timeout=30)
    assert _gone(child), "the job outlived the process that Snakemake started"


def test_without_a_server_or_when_turned_off_the_command_runs_in_process(server, tmp_path):
    r = _probe(tmp_path, "@infcop-no-such-server", act="exit")
    report = _report(tmp_path)
    assert r.returncode == 7 and report["ppid"] != server[0].pid
    (tmp_path / "report.json").unlink()
    r = _probe(tmp_path, server[1], act="exit", INFCOP_WARM_START="off")
    assert r.returncode == 7 and _report(tmp_path)["ppid"] != server[0].pid


def test_a_request_from_another_installation_is_refused(server):
    request = json.dumps({"argv": ["schema"], "cwd": "/", "env": {}, "umask": 0o22, "pgid": os.getpgid(0),
                          **{**warm_start._identity(), "version": "0.0-other"}}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(warm_start._sockaddr(server[1]))
        socket.send_fds(s, [struct.pack("!I", len(request))], [0, 1, 2])
        s.sendall(request)
        s.settimeout(60)
        assert s.recv(9)[:1] == b"R"


def test_the_server_goes_when_the_process_that_started_it_does(tmp_path):
    code = ("import sys; from infcop import warm_start; p = warm_start.start(sys.argv[1]); "
            "print(p.pid if p else 0)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "log")], capture_output=True, text=True,
                         timeout=60, env=env())
    pid = int(out.stdout)
    assert pid > 0, out.stderr
    assert _gone(pid, timeout=120), "the server outlived the workflow that started it"
