rule train_dense:
    output:
        model=f"{DENSE}/{L.MODEL}",
        init=f"{DENSE}/{L.INIT}",
        metrics=f"{DENSE}/{L.METRICS}",
    params:
        key=stage_key("dense"),
        experiment=EXPERIMENT_RECORD,
        out=lambda wc, output: os.path.dirname(output.model),
    log:
        LAYOUT.log(*W, "dense"),
    benchmark:
        LAYOUT.benchmark(*W, "dense")
    threads: 1
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
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
    params:
        key=stage_key("dense"),
        experiment=EXPERIMENT_RECORD,
        dense=lambda wc, input: os.path.dirname(input.init),
    log:
        LAYOUT.log(*W, "rewind", k="{epoch}"),
    benchmark:
        LAYOUT.benchmark(*W, "rewind", k="{epoch}")
    threads: 1
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
    shell:
        logged(
            "infcop rewind-point --dataset {wildcards.dataset:q} --arch {wildcards.arch:q} --seed {wildcards.seed}"
            " --epoch {wildcards.epoch} --config {params.experiment:q} --expect {params.key} --dense {params.dense:q}"
            " --threads {threads}"
        )
