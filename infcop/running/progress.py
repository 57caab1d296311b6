"""One line per finished job on Snakemake's output, in place of every job's rule block and shell command:

    [ 37/285  13%  0:00:41] imp_iteration   mnist1d mnist1d_cnn seed 1 sap iteration 3

done / total, the time since the workflow started, and the job that finished. Errors, warnings and
Snakemake's own messages pass unchanged. Installed by the workflow's `onstart` (real local runs only: dry
runs and cluster runs keep Snakemake's output) unless Snakemake was asked for the shell commands
(`--printshellcmds`) or `--verbose`; a job's epochs are in its log (`logs/`)."""
from __future__ import annotations

import logging
import time

# Snakemake's LogEvent values (a StrEnum): the records this filter replaces.
JOB_INFO, JOB_STARTED, SHELLCMD = "job_info", "job_started", "shellcmd"
JOB_FINISHED, GROUP_INFO, PROGRESS = "job_finished", "group_info", "progress"
WILDCARD_ORDER = ("dataset", "arch", "seed", "method", "k", "epoch", "figure")


def describe(rule: str, wildcards: dict) -> str:
    """'imp_iteration   mnist1d mnist1d_cnn seed 1 sap iteration 3': the rule, then its wildcards in the
    layout's order, named where a bare value would not say what it is."""
    words = []
    for name in sorted(wildcards, key=lambda n: (WILDCARD_ORDER.index(n) if n in WILDCARD_ORDER else 99, n)):
        value = wildcards[name]
        words.append({"seed": f"seed {value}", "k": f"iteration {value}", "epoch": f"epoch {value}"}.get(name, str(value)))
    return f"{rule:<15} {' '.join(words)}".rstrip()


def progress_line(done: int, total: int, elapsed: float, job: str) -> str:
    width = len(str(total))
    pct = 100 * done // total if total else 100
    minutes, seconds = divmod(int(elapsed), 60)
    hours, minutes = divmod(minutes, 60)
    return f"[{done:>{width}}/{total} {pct:>3}%  {hours}:{minutes:02d}:{seconds:02d}] {job}"


class ProgressLines(logging.Filter):
    """A filter on the handler that writes Snakemake's output to the terminal: swallows the per-job records
    and the scheduler's chatter, and writes a progress line naming the job that just finished in place of
    each progress record (Snakemake logs 'finished', then 'progress'). The log file under
    .snakemake/log/ keeps every record."""

    CHATTER = "Select jobs to execute..."

    def __init__(self, handler: logging.Handler, clock=time.monotonic):
        super().__init__()
        self.handler, self.clock = handler, clock
        self.start = clock()
        self.jobs: dict[int, str] = {}
        self.finished: list[int] = []

    def filter(self, record: logging.LogRecord) -> bool:
        event = getattr(record, "event", None)
        if event == JOB_INFO:
            self.jobs[record.jobid] = describe(record.rule_name, dict(record.wildcards or {}))
            return False
        if event == JOB_FINISHED:
            self.finished.append(record.job_id)
            return False
        if event in (JOB_STARTED, SHELLCMD, GROUP_INFO):
            return False
        if event == PROGRESS:
            jobid = self.finished.pop(0) if self.finished else None
            job = self.jobs.pop(jobid, f"job {jobid}") if jobid is not None else ""
            line = progress_line(record.done, record.total, self.clock() - self.start, job)
            self.handler.handle(logging.makeLogRecord(
                {"msg": line, "levelno": logging.INFO, "levelname": "INFO", "event": LINE}))
            return False
        if event is None and record.msg == self.CHATTER:
            return False
        return True


LINE = "infcop_progress"  # the event of the lines written here: no filter or formatter of Snakemake's knows it


def install(logger: logging.Logger, *, printshellcmds: bool, verbose: bool) -> list[ProgressLines]:
    """Put the filter on the handlers of Snakemake's logger that write to the terminal (not on its log file),
    unless the shell commands or everything were asked for."""
    if printshellcmds or verbose:
        return []
    installed = []
    for handler in logger.handlers:
        if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
            installed.append(ProgressLines(handler))
            handler.addFilter(installed[-1])
    return installed
