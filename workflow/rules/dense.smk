rule train_dense:
    output:
        model=f"{DENSE}/{L.MODEL}",
        init=f"{DENSE}/{L.INIT}",
        metrics=f"{DENSE}/{L.METRICS}",
    log:
        LAYOUT.log(*W, "dense"),
    benchmark:
        LAYOUT.benchmark(*W, "dense")
    threads: 1
    resources:
        gpu=1,
        runtime=cluster_runtime("train_dense"),  # minutes; sized to the work (infcop.running.cluster)
        mem_mb=cluster_mem_mb("train_dense"),
        gres=cluster_gres,  # the SLURM profile's GPU, none with training.device: cpu
    params:
        key=stage_key("dense"),
        experiment=EXPERIMENT_RECORD,
        out=lambda wc, output: os.path.dirname(output.model),
    shell:
        logged(
            "infcop train-dense --dataset {wildcards.dataset:q} --arch {wildcards.arch:q} --seed {wildcards.seed}"
            " --config {params.experiment:q} --expect {params.key} --threads {threads} --out {params.out:q}"
        )


# The dense network after k of its epochs, for methods with `rewind: {epoch: k}` (late rewinding): its
# first k epochs again, from the same init, batches and learning-rate schedule.
rule rewind_point:
    input:
        init=f"{DENSE}/{L.INIT}",
        dense=f"{DENSE}/{L.MODEL}",
    output:
        f"{DENSE}/{L.rewind_file('{epoch}')}",
    log:
        LAYOUT.log(*W, "rewind", k="{epoch}"),
    benchmark:
        LAYOUT.benchmark(*W, "rewind", k="{epoch}")
    threads: 1
    resources:
        gpu=1,
        runtime=cluster_runtime("rewind_point"),  # minutes; sized to the work (infcop.running.cluster)
        mem_mb=cluster_mem_mb("rewind_point"),
        gres=cluster_gres,  # the SLURM profile's GPU, none with training.device: cpu
    params:
        key=stage_key("dense"),
        experiment=EXPERIMENT_RECORD,
        dense=lambda wc, input: os.path.dirname(input.init),
    shell:
        logged(
            "infcop rewind-point --dataset {wildcards.dataset:q} --arch {wildcards.arch:q} --seed {wildcards.seed}"
            " --epoch {wildcards.epoch} --config {params.experiment:q} --expect {params.key} --dense {params.dense:q}"
            " --threads {threads}"
        )
