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
