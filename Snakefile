# infcop's workflow lives in workflow/Snakefile (the Snakemake workflow catalog's layout, so that
# snakedeploy and `snakemake --snakefile workflow/Snakefile` find it); this file lets a plain
# `snakemake` in the project's root run it.


include: "workflow/Snakefile"


# Snakemake takes the default target only from the main Snakefile, never from an included one.
workflow.default_target = "all"
