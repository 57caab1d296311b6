"""The Snakemake workflow catalog's conventions: the workflow in workflow/Snakefile (the top-level Snakefile
only includes it), a catalog file that says how the software is deployed, `snakemake --lint` clean but for
the lint the catalog file explains, and the Snakefiles as `snakefmt` formats them."""
import re
import subprocess

import yaml

from workflow_helpers import BIN, ROOT, job_counts, snakemake, workdir

SNAKEFILES = ["Snakefile", "workflow/Snakefile", *sorted(str(p.relative_to(ROOT)) for p in
                                                          (ROOT / "workflow" / "rules").glob("*.smk"))]
# No rule names a conda environment or container: they run the `infcop` of Snakemake's own environment, and
# --use-conda cannot be tested where CI runs (no conda). The catalog file says so; this lint is the one left.
ACCEPTED_LINT = "Specify a conda environment or container for each rule."


def test_the_workflow_lives_in_workflow_snakefile_and_both_entry_points_plan_the_same_jobs(tmp_path):
    top = (ROOT / "Snakefile").read_text()
    code = [line for line in top.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert code == ['include: "workflow/Snakefile"', 'workflow.default_target = "all"']
    wd = workdir(tmp_path)
    plain = job_counts(snakemake(wd, "-n").stdout)
    direct = job_counts(snakemake(wd, "-n", "--snakefile", "workflow/Snakefile").stdout)
    assert plain == direct and plain["imp_iteration"] > 0 and plain["all"] == 1


def test_lint_finds_nothing_but_the_missing_software_directive_the_catalog_file_explains(tmp_path):
    wd = workdir(tmp_path)
    r = snakemake(wd, "--lint", check=False)
    out = r.stdout + r.stderr
    titles = re.findall(r"^\s+\* (.+?):?$", out, re.M)
    assert set(titles) == {ACCEPTED_LINT}, out[-3000:]
    assert len(titles) == len(re.findall(r"^Lints for rule ", out, re.M))  # one per rule, and no snakefile lint
    catalog = yaml.safe_load((ROOT / ".snakemake-workflow-catalog.yml").read_text())
    deployment = catalog["usage"]["software-stack-deployment"]
    assert deployment == {"conda": False, "singularity": False, "singularity+conda": False}
    assert catalog["usage"]["report"] is True
    for f in SNAKEFILES:  # what the catalog file claims
        assert not re.search(r"^\s+(conda|container):", (ROOT / f).read_text(), re.M), f


def test_the_snakefiles_are_formatted_as_snakefmt_would():
    r = subprocess.run([str(BIN / "snakefmt"), "--check", *SNAKEFILES], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
