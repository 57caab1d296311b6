# One job per IMP iteration k: its input is iteration k-1 (the dense network for k = 1). A killed job
# resumes from resume.pt, the epoch checkpoint it keeps beside its declared outputs.
rule imp_iteration:
    input:
        previous=previous_model,
        dense=f"{DENSE}/{L.MODEL}",
        dense_init=f"{DENSE}/{L.INIT}",
        dense_metrics=f"{DENSE}/{L.METRICS}",
        rewind=rewind_input,
    output:
        model=f"{ITERATION}/{L.MODEL}",
        metrics=f"{ITERATION}/{L.METRICS}",
    log:
        LAYOUT.log(*W, "iteration", "{method}", "{k}"),
    benchmark:
        LAYOUT.benchmark(*W, "iteration", "{method}", "{k}")
    threads: 1
    resources:
        gpu=1,
        runtime=cluster_runtime("imp_iteration"),  # minutes; sized to the work (infcop.running.cluster)
        mem_mb=cluster_mem_mb("imp_iteration"),
        gres=cluster_gres,  # the SLURM profile's GPU, none with training.device: cpu
    params:
        key=stage_key("iteration"),
        experiment=EXPERIMENT_RECORD,
        dense=lambda wc, input: os.path.dirname(input.dense),
        previous=lambda wc, input: os.path.dirname(input.previous),
        out=lambda wc, output: os.path.dirname(output.model),
    shell:
        logged(
            "infcop imp-iteration --dataset {wildcards.dataset:q} --arch {wildcards.arch:q} --seed {wildcards.seed}"
            " --method {wildcards.method:q} --config {params.experiment:q} --expect {params.key}"
            " --iteration {wildcards.k} --dense {params.dense:q} --previous {params.previous:q}"
            " --threads {threads} --out {params.out:q}"
        )
