"""The `infcop` command: one subcommand per pipeline stage. Heavy imports happen inside the commands so
that `--help` and light commands start fast."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import InfcopError, __version__

from .showing.plots import FIGURES  # the figure names, defined once (cheap: no matplotlib)


def _json_arg(text: str, what: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InfcopError(f"{what} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InfcopError(f"{what} must be a JSON object")
    return value


def _experiment(args) -> dict | None:
    """The experiment config of --config (read strictly, defaults filled, checked), or None."""
    from .experiments.experiment import resolve

    return resolve([args.config]) if getattr(args, "config", None) else None


def _settings(args, config) -> dict:
    from .experiments.config import complete_settings, settings_of

    if args.settings:
        return complete_settings(_json_arg(args.settings, "--settings"))
    if config is not None:
        return complete_settings(settings_of(config))
    raise InfcopError("give the run's settings: --config <experiment yaml> or --settings '<json>'")


def _method(args, config) -> dict:
    if args.method_spec:
        return _json_arg(args.method_spec, "--method-spec")
    if config is not None:
        methods = config["methods"]
        if args.method not in methods:
            raise InfcopError(f"unknown method '{args.method}'; presets in {args.config}: {', '.join(methods)}")
        return methods[args.method]
    raise InfcopError("give the method's parameters: --config <experiment yaml> or --method-spec '<json>'")


def _check_expected(args, stage: str, settings: dict, preset: dict | None = None) -> None:
    """--expect: the settings this job reads must be those Snakemake planned it with."""
    if not getattr(args, "expect", None):
        return
    from .experiments.experiment import key_of, stage_settings

    got = key_of(stage_settings(settings, stage, preset))
    if got != args.expect:
        raise InfcopError(f"the settings in '{args.config}' (key {got}) are not those this job was planned with "
                          f"(key {args.expect}): the experiment changed while a run was going on? Run snakemake "
                          "again; it reruns what the change affects")


def _common(p, method=False):
    from .science.data import DATASETS  # the registry's names (plugins' included), without importing torch

    p.add_argument("--dataset", required=True, help=f"data set name ({', '.join(DATASETS.names())})")
    p.add_argument("--arch", required=True, help="model registry name (small_cnn, resnet20, torchvision:<name>, ...)")
    p.add_argument("--seed", required=True, type=int, help="random seed of the run (integer >= 0)")
    p.add_argument("--config", help="experiment YAML to read settings (and method presets) from")
    p.add_argument("--settings", help="settings as JSON ({data, dense, training, flows}); overrides --config")
    p.add_argument("--expect", help="the key of the stage's settings the caller planned with (the workflow "
                   "passes it; a mismatch stops the job before it trains)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    if method:
        p.add_argument("--method", required=True, help="method name (a preset under 'methods')")
        p.add_argument("--method-spec", help="the method preset as JSON; overrides --config")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="infcop", description=(
        "Information Consistent Pruning: iterative magnitude pruning whose retraining stops when the "
        "pruned network's information or gradient flow matches the dense network's."))
    ap.add_argument("--version", action="version", version=f"infcop {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train-dense", help="train the dense network; save it, its init, val accuracy and flows")
    _common(p)
    p.add_argument("--out", required=True, help="output directory (writes model.pt, init.pt, metrics.json)")

    p = sub.add_parser("rewind-point", help="the dense network after k of its epochs (for rewind: {epoch: k})")
    _common(p)
    p.add_argument("--epoch", required=True, type=int, help="k, the dense epoch to rewind to (>= 1)")
    p.add_argument("--dense", required=True, help="dense stage directory (reads init.pt, writes epoch{k}.pt)")

    p = sub.add_parser("imp-iteration", help="prune iteration k-1, rewind, retrain with stop; save iteration k")
    _common(p, method=True)
    p.add_argument("--iteration", required=True, type=int, help="k, the IMP iteration to produce (>= 1)")
    p.add_argument("--dense", required=True, help="dense stage directory (model.pt, init.pt, metrics.json)")
    p.add_argument("--previous", required=True, help="iteration k-1's directory (the dense one for k = 1)")
    p.add_argument("--out", required=True, help="output directory (writes model.pt, metrics.json)")

    p = sub.add_parser("ticket", help="export a run's sparse network at one of its levels, by default the last "
                       "(retrained if final_epochs > 0), for infcop.load_ticket")
    _common(p, method=True)
    p.add_argument("--dense", required=True, help="dense stage directory")
    p.add_argument("--iterations", "--last", dest="iterations", required=True, nargs="+", metavar="DIR",
                   help="the run's iteration directories (--last DIR: the last one alone)")
    p.add_argument("--level", default="last", help="the iteration to export (0 = the dense network), or last "
                   "(default)")
    p.add_argument("--out", required=True, help="output directory (writes ticket.pt, ticket.json)")

    p = sub.add_parser("evaluate", help="test accuracy and per-layer flows of every iteration of a run, as CSV, "
                       "and the run's ticket (ticket.pt, ticket.json)")
    _common(p, method=True)
    p.add_argument("--dense", required=True, help="dense stage directory")
    p.add_argument("--iterations", required=True, nargs="+", help="the run's iteration directories, in order")
    p.add_argument("--out", required=True, help="run directory (writes evaluation.csv, layers.csv, ticket.pt and "
                   "ticket.json)")

    p = sub.add_parser("tables", help="collect every run of an experiment into tidy tables and the summary")
    p.add_argument("--config", required=True, help="experiment YAML (its runs and method presets)")
    p.add_argument("--runs", nargs="+", help="method run directories (default: every run of the experiment)")
    p.add_argument("--expect", help="the key of the methods' presets the caller planned with")
    p.add_argument("--out", required=True, help="tables directory")

    p = sub.add_parser("plot", help="draw one figure from the tables (PDF and PNG)")
    p.add_argument("figure", choices=list(FIGURES), help="which figure")
    p.add_argument("--tables", required=True, help="tables directory")
    p.add_argument("--out", required=True, help="PDF path; the PNG is written beside it")

    p = sub.add_parser("summary", help="print the summary table (summary.md) of a results directory, or write it "
                       "as a self-contained HTML page (--html)")
    p.add_argument("results_dir", nargs="?", default="results", help="results directory (default: results)")
    p.add_argument("--html", metavar="PATH", help="write summary.md as a self-contained HTML page to PATH "
                   "(atomically) instead of printing it")

    p = sub.add_parser("branch", help="print the first-iteration files of one method's runs, for "
                       "`snakemake --forcerun $(infcop branch METHOD)` (reruns just that method's branch)")
    p.add_argument("method", help="method name (a preset in experiment.methods)")
    p.add_argument("--configfile", default="config.yaml", help="experiment config (default: config.yaml)")

    p = sub.add_parser("check-config", help="validate an experiment config without running anything")
    p.add_argument("config", help="config YAML")

    sub.add_parser("schema", help="print the JSON schema of config.yaml, generated from the registries "
                   "(workflow/schemas/config.schema.yaml is a copy of it)")
    return ap


def main(argv=None) -> int:
    from .running.warm_start import run_remote

    code = run_remote(sys.argv[1:] if argv is None else list(argv))  # a workflow job: forked warm, if it can
    if code is not None:
        return code
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        from .science.plugins import load as load_plugins
        load_plugins()  # your own pruners, criteria, ... register themselves before any config is read
        return _dispatch(args) or 0
    except InfcopError as exc:
        print(f"infcop {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _stage(args) -> None:
    from .running import steps

    cmd = args.command
    config = _experiment(args)
    settings = _settings(args, config)
    common = (args.dataset, args.arch, args.seed)
    if cmd == "train-dense":
        _check_expected(args, "dense", settings)
        steps.train_dense(*common, settings, args.out, args.threads)
        return
    if cmd == "rewind-point":
        _check_expected(args, "dense", settings)
        if not 1 <= args.epoch <= settings["dense"]["epochs"]:
            raise InfcopError(f"--epoch must be in 1..dense.epochs ({settings['dense']['epochs']}), got {args.epoch}")
        steps.rewind_point(*common, settings, args.epoch, args.dense, args.threads)
        return
    method = _method(args, config)
    if cmd == "evaluate":
        _check_expected(args, "evaluate", settings, method)
        steps.evaluate_run(*common, args.method, method, settings, args.dense, args.iterations, args.out,
                           args.threads)
        return
    if cmd == "imp-iteration":
        _check_expected(args, "iteration", settings, method)
        steps.imp_iteration(*common, args.method, method, settings, args.iteration, args.dense, args.previous,
                            args.out, args.threads)
    else:
        _check_expected(args, "ticket", settings, method)
        source = steps.ticket_source(args.dense, args.iterations, args.level, args.out)  # before any training
        steps.export_ticket(*common, args.method, method, settings, args.dense, source, args.out, args.threads)


def _dispatch(args) -> int | None:
    from .running import layout as L

    cmd = args.command
    if cmd in ("train-dense", "rewind-point", "imp-iteration", "ticket", "evaluate"):
        _stage(args)
    elif cmd == "tables":
        from .experiments.config import settings_of
        from .experiments.experiment import root_of
        from .judging.tables import write_tables
        config = _experiment(args)
        methods = {m: config["methods"][m] for m in config["experiment"]["methods"]}
        _check_expected(args, "tables", settings_of(config), methods)
        write_tables(args.runs or L.Layout(root_of(config)).runs(config["experiment"]), methods,
                     settings_of(config), args.out)
    elif cmd == "plot":
        from .running.faults import kill_point
        from .showing.plots import make_figure
        kill_point("plot", args.out)
        make_figure(args.figure, Path(args.tables), Path(args.out))
    elif cmd == "summary":
        path = Path(L.Layout(args.results_dir).tables) / L.SUMMARY_MD
        if not path.is_file():
            raise InfcopError(f"no summary at '{path}'; build it with `snakemake {path}`")
        if args.html:
            from .showing.report_html import write_summary_page
            write_summary_page(path, args.html)
        else:
            print(path.read_text(), end="")
    elif cmd == "branch":
        from .experiments.experiment import resolve, root_of
        config = resolve([args.configfile])
        exp = config["experiment"]
        if args.method not in exp["methods"]:
            raise InfcopError(f"method '{args.method}' is not run by {args.configfile}; its methods: "
                              f"{', '.join(exp['methods'])}")
        for run in L.Layout(root_of(config)).runs({**exp, "methods": [args.method]}):
            print(f"{run}/{L.iteration_name(1)}/{L.MODEL}")
    elif cmd == "check-config":
        from .experiments.experiment import resolve
        resolve([args.config])
        print(f"{args.config}: OK")
    elif cmd == "schema":
        from .experiments.schema import schema_yaml
        print(schema_yaml(), end="")
    from .running.faults import kill_point
    kill_point("done", cmd)
    return None
