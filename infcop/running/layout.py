"""The results layout: every directory and file name of an experiment, in one place. The rules, the
stages, the tables and `infcop branch` all ask this module; nothing else spells a results path.

    {root}/{dataset}/{arch}/seed{seed}/dense/            model.pt, init.pt, metrics.json
    {root}/{dataset}/{arch}/seed{seed}/{method}/iter{k}/ model.pt, metrics.json (+ resume.pt while running)
    {root}/{dataset}/{arch}/seed{seed}/{method}/         evaluation.csv, layers.csv, ticket.pt, ticket.json
    {root}/tables/                                        the tables (infcop.judging.tables.TABLES) and summary.html
    {root}/figures/, {root}/logs/, {root}/benchmarks/

Methods are called with wildcard strings too ("{dataset}", ...), which gives the Snakemake patterns."""
from __future__ import annotations

from dataclasses import dataclass

MODEL = "model.pt"
INIT = "init.pt"
METRICS = "metrics.json"
RESUME = "resume.pt"  # the in-progress epoch checkpoint, beside a stage's declared outputs
EVALUATION = "evaluation.csv"
LAYERS = "layers.csv"
TICKET = "ticket.pt"
TICKET_INFO = "ticket.json"
TICKET_RESUME = "ticket_resume.pt"
DENSE = "dense"
# Tables of an experiment (in {root}/tables/; infcop.judging.tables.TABLES lists every table `infcop tables` writes)
SUMMARY_MD = "summary.md"
SUMMARY_CSV = "summary.csv"
SUMMARY_HTML = "summary.html"  # summary.md as a self-contained page, for the report (`infcop summary --html`)


def rewind_file(k) -> str:
    """The dense network's state after k of its epochs (late rewinding), in the dense directory."""
    return f"epoch{k}.pt"


def rewind_resume(k) -> str:
    return f"epoch{k}_resume.pt"

# Names a method may not take: they are folders beside the methods' folders, or the root's own.
RESERVED = (DENSE, "tables", "figures", "logs", "benchmarks")


def iteration_name(k) -> str:
    return f"iter{k}"


@dataclass(frozen=True)
class Layout:
    root: str = "results"

    def run(self, dataset, arch, seed) -> str:
        return f"{self.root}/{dataset}/{arch}/seed{seed}"

    def dense(self, dataset, arch, seed) -> str:
        return f"{self.run(dataset, arch, seed)}/{DENSE}"

    def method(self, dataset, arch, seed, method) -> str:
        return f"{self.run(dataset, arch, seed)}/{method}"

    def iteration(self, dataset, arch, seed, method, k) -> str:
        return f"{self.method(dataset, arch, seed, method)}/{iteration_name(k)}"

    def previous(self, dataset, arch, seed, method, k: int) -> str:
        """Iteration k-1's directory: the dense one for k = 1."""
        if int(k) == 1:
            return self.dense(dataset, arch, seed)
        return self.iteration(dataset, arch, seed, method, int(k) - 1)

    def iterations(self, dataset, arch, seed, method, count: int) -> list[str]:
        return [self.iteration(dataset, arch, seed, method, k) for k in range(1, count + 1)]

    @property
    def tables(self) -> str:
        return f"{self.root}/tables"

    @property
    def figures(self) -> str:
        return f"{self.root}/figures"

    def _job(self, kind, ext, dataset, arch, seed, stage, method=None, k=None) -> str:
        if stage in (DENSE, "rewind"):
            name = DENSE if stage == DENSE else f"{DENSE}_epoch{k}"
        else:
            name = f"{method}/{iteration_name(k) if stage == 'iteration' else stage}"
        return f"{self.root}/{kind}/{dataset}/{arch}/seed{seed}/{name}.{ext}"

    def log(self, dataset, arch, seed, stage: str, method=None, k=None) -> str:
        """One log per job; stage is 'dense', 'rewind' (k = epoch), 'iteration' (with method and k),
        'evaluate' or 'ticket'."""
        return self._job("logs", "log", dataset, arch, seed, stage, method, k)

    def benchmark(self, dataset, arch, seed, stage: str, method=None, k=None) -> str:
        return self._job("benchmarks", "tsv", dataset, arch, seed, stage, method, k)

    def report_log(self, name: str) -> str:
        """Logs of the experiment-wide jobs: 'tables', 'figures/{figure}'."""
        return f"{self.root}/logs/{name}.log"

    def report_benchmark(self, name: str) -> str:
        return f"{self.root}/benchmarks/{name}.tsv"

    def runs(self, experiment: dict) -> list[str]:
        """Every method run directory of an experiment section (datasets x archs x seeds x methods)."""
        return [self.method(d, a, s, m) for d in experiment["datasets"] for a in experiment["archs"]
                for s in experiment["seeds"] for m in experiment["methods"]]


def drop_finished_checkpoints(root) -> int:
    """Delete the final epoch checkpoint (resume.pt) of every finished stage under `root` — one whose
    model and metrics are both written — and return how many. Finished stages keep theirs until the
    workflow succeeds: a job killed after writing its outputs but before Snakemake recorded them, and a
    SLURM group that is resubmitted whole (Snakemake first deletes every output of the group, finished
    iterations included), then finish those stages from it at once instead of training them again.
    An unfinished stage's checkpoint (no metrics yet) is kept: it is what that stage resumes from."""
    from pathlib import Path

    dropped = 0
    for resume in Path(root).rglob(RESUME):
        if (resume.parent / MODEL).is_file() and (resume.parent / METRICS).is_file():
            resume.unlink(missing_ok=True)
            dropped += 1
    return dropped
