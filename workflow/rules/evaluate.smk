rule evaluate:
    input:
        dense=f"{RUN}/dense/model.pt",
        dense_metrics=f"{RUN}/dense/metrics.json",
        models=lambda wc: [f"{d}/model.pt" for d in iteration_dirs(wc)],
        metrics=lambda wc: [f"{d}/metrics.json" for d in iteration_dirs(wc)],
    output:
        evaluation=f"{RUN}/{{method}}/evaluation.csv",
        layers=f"{RUN}/{{method}}/layers.csv",
    params:
        settings=SETTINGS_JSON,
        dense=lambda wc, input: os.path.dirname(input.dense),
        iterations=iteration_dirs,
        out=lambda wc, output: os.path.dirname(output.evaluation),
    log:
        "results/logs/{dataset}/{arch}/seed{seed}/{method}/evaluate.log",
    benchmark:
        "results/benchmarks/{dataset}/{arch}/seed{seed}/{method}/evaluate.tsv"
    threads: 1
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
    shell:
        "infcop evaluate --dataset {wildcards.dataset:q} --arch {wildcards.arch:q} --seed {wildcards.seed}"
        " --method {wildcards.method:q} --settings {params.settings:q} --dense {params.dense:q}"
        " --iterations {params.iterations:q} --threads {threads} --out {params.out:q} > {log:q} 2>&1"
