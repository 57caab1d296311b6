"""The progress lines that replace Snakemake's per-job output (infcop.running.progress), on a logger of our own."""
import io
import logging

from infcop.running.progress import describe, install, progress_line


def _logger(tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"progress-test-{tmp_path}")
    logger.propagate, logger.level = False, logging.INFO
    terminal, file = io.StringIO(), tmp_path / "snakemake.log"
    logger.addHandler(logging.StreamHandler(terminal))
    logger.addHandler(logging.FileHandler(file))
    return logger, terminal, file


def _job(logger, jobid, rule, **wildcards):
    logger.info(f"Rule: {rule}", extra=dict(event="job_info", jobid=jobid, rule_name=rule, wildcards=wildcards))
    logger.info("infcop command", extra=dict(event="shellcmd"))


def _finish(logger, jobid, done, total):
    logger.info(f"Finished jobid: {jobid}", extra=dict(event="job_finished", job_id=jobid))
    logger.info(None, extra=dict(event="progress", done=done, total=total))


def test_each_finished_job_gives_one_line_naming_it_with_done_total_and_elapsed(tmp_path):
    logger, terminal, file = _logger(tmp_path)
    clock = iter([161.5, 3725.0])
    [lines] = install(logger, printshellcmds=False, verbose=False)
    lines.clock, lines.start = lambda: next(clock), 100.0
    _job(logger, 7, "imp_iteration", k="3", method="sap", seed="1", arch="mnist1d_cnn", dataset="mnist1d")
    _job(logger, 9, "figure", figure="accuracy")
    logger.info("Select jobs to execute...")
    logger.info("Execute 2 jobs...", extra=dict(event="job_started", jobs=[7, 9]))
    _finish(logger, 9, 1, 12)  # the figure finishes first: the line names it, not the job that started first
    _finish(logger, 7, 2, 12)
    logger.warning("a warning passes")
    assert terminal.getvalue().splitlines() == [
        "[ 1/12   8%  0:01:01] figure          accuracy",
        "[ 2/12  16%  1:00:25] imp_iteration   mnist1d mnist1d_cnn seed 1 sap iteration 3",
        "a warning passes",
    ]
    logged = file.read_text()  # the log file keeps every record
    assert "Finished jobid: 7" in logged and "infcop command" in logged and "Select jobs" in logged


def test_asking_for_the_shell_commands_or_everything_keeps_snakemakes_output(tmp_path):
    for printshellcmds, verbose in ((True, False), (False, True)):
        logger, terminal, _ = _logger(tmp_path / f"{printshellcmds}{verbose}")
        assert install(logger, printshellcmds=printshellcmds, verbose=verbose) == []
        _job(logger, 1, "tables")
        _finish(logger, 1, 1, 1)
        assert "infcop command" in terminal.getvalue() and "Finished jobid: 1" in terminal.getvalue()


def test_the_words_of_a_line():
    assert describe("train_dense", {"seed": "0", "dataset": "digits", "arch": "small_cnn"}) == \
        "train_dense     digits small_cnn seed 0"
    assert describe("tables", {}) == "tables"
    assert progress_line(285, 285, 59.9, "all") == "[285/285 100%  0:00:59] all"
