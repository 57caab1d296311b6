"""The science: data sets, networks, masks, pruners, retraining schedules and optimizers, stop criteria, flows and
the training loop, plus the registries and plugins that extend them. Nothing here knows Snakemake or files of a run."""
