# One job per run after its last iteration: every iteration on the test split, and the run's ticket.
rule evaluate:
    input:
        dense=f"{DENSE}/{L.MODEL}",
        dense_init=f"{DENSE}/{L.INIT}",
        dense_metrics=f"{DENSE}/{L.METRICS}",
        models=lambda wc: [f"{d}/{L.MODEL}" for d in iteration_dirs(wc)],
        metrics=lambda wc: [f"{d}/{L.METRICS}" for d in iteration_dirs(wc)],
        rewind=rewind_input,
    output:
        evaluation=f"{RUN_DIR}/{L.EVALUATION}",
        layers=f"{RUN_DIR}/{L.LAYERS}",
        ticket=f"{RUN_DIR}/{L.TICKET}",
        info=f"{RUN_DIR}/{L.TICKET_INFO}",
    log:
        LAYOUT.log(*W, "evaluate", "{method}"),
    benchmark:
        LAYOUT.benchmark(*W, "evaluate", "{method}")
    threads: 1
    resources:
        gpu=1,
        runtime=cluster_runtime("evaluate"),  # minutes; sized to the work (infcop.running.cluster)
        mem_mb=cluster_mem_mb("evaluate"),
        gres=cluster_gres,  # the SLURM profile's GPU, none with training.device: cpu
    params:
        key=stage_key("evaluate"),
        experiment=EXPERIMENT_RECORD,
        dense=lambda wc, input: os.path.dirname(input.dense),
        iterations=iteration_dirs,
        out=lambda wc, output: os.path.dirname(output.evaluation),
    shell:
        logged(
            "infcop evaluate --dataset {wildcards.dataset:q} --arch {wildcards.arch:q} --seed {wildcards.seed}"
            " --method {wildcards.method:q} --config {params.experiment:q} --expect {params.key} --dense {params.dense:q}"
            " --iterations {params.iterations:q} --threads {threads} --out {params.out:q}"
        )
