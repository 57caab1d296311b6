# infcop: dense -> checkpointed IMP iterations -> evaluate -> tables and figures.
# Thin rules: every job calls one `infcop` command; the science lives in the infcop package.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# The rules call `infcop` from PATH (common.smk adds the running interpreter's bin folder when needed).
envvars:
    "PATH",


# common.smk checks the config (infcop's checks, then the JSON schema) before any rule exists.
include: "workflow/rules/common.smk"
include: "workflow/rules/dense.smk"
include: "workflow/rules/imp.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_targets(),
