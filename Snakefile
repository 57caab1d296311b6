# infcop: dense -> checkpointed IMP iterations -> evaluate -> tables and figures.
# Thin rules: every job calls one `infcop` command; the science lives in the infcop package.
#
# The experiment is config.yaml, or the files given with --configfile *instead of* it (an experiment
# file is complete on its own), plus any --config overrides; common.smk resolves and checks it and
# records it in the experiment's results root, from where the jobs read their settings.
from snakemake.utils import min_version

min_version("9.0")


# The rules call `infcop` from PATH (common.smk adds the running interpreter's bin folder when needed).
envvars:
    "PATH",


include: "workflow/rules/common.smk"
include: "workflow/rules/dense.smk"
include: "workflow/rules/imp.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


onstart:
    record_experiment()
    start_warm_start()


onsuccess:
    stop_warm_start()
    drop_finished_checkpoints()


onerror:
    stop_warm_start()


rule all:
    default_target: True
    input:
        all_targets(),
