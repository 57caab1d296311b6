rule train_dense:
    output:
        model=f"{RUN}/dense/model.pt",
        init=f"{RUN}/dense/init.pt",
        metrics=f"{RUN}/dense/metrics.json",
    params:
        settings=DENSE_SETTINGS_JSON,
        out=lambda wc, output: os.path.dirname(output.model),
    log:
        "results/logs/{dataset}/{arch}/seed{seed}/dense.log",
    benchmark:
        "results/benchmarks/{dataset}/{arch}/seed{seed}/dense.tsv"
    threads: 1
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
    shell:
        "infcop train-dense --dataset {wildcards.dataset:q} --arch {wildcards.arch:q} --seed {wildcards.seed}"
        " --settings {params.settings:q} --threads {threads} --out {params.out:q} > {log:q} 2>&1"
