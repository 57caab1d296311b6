# One job per IMP iteration k: its input is iteration k-1 (the dense network for k = 1). A killed job
# resumes from resume.pt, the epoch checkpoint it keeps beside its declared outputs.
rule imp_iteration:
    input:
        previous=previous_model,
        dense=f"{RUN}/dense/model.pt",
        dense_init=f"{RUN}/dense/init.pt",
        dense_metrics=f"{RUN}/dense/metrics.json",
    output:
        model=f"{RUN}/{{method}}/iter{{k}}/model.pt",
        metrics=f"{RUN}/{{method}}/iter{{k}}/metrics.json",
    params:
        method=method_json,
        settings=SETTINGS_JSON,
        dense=lambda wc, input: os.path.dirname(input.dense),
        previous=lambda wc, input: os.path.dirname(input.previous),
        out=lambda wc, output: os.path.dirname(output.model),
    log:
        "results/logs/{dataset}/{arch}/seed{seed}/{method}/iter{k}.log",
    benchmark:
        "results/benchmarks/{dataset}/{arch}/seed{seed}/{method}/iter{k}.tsv"
    threads: 1
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
    shell:
        "infcop imp-iteration --dataset {wildcards.dataset:q} --arch {wildcards.arch:q} --seed {wildcards.seed}"
        " --method {wildcards.method:q} --method-spec {params.method:q} --settings {params.settings:q}"
        " --iteration {wildcards.k} --dense {params.dense:q} --previous {params.previous:q}"
        " --threads {threads} --out {params.out:q} > {log:q} 2>&1"


rule ticket:
    input:
        last=f"{RUN}/{{method}}/iter{K}/model.pt",
        dense=f"{RUN}/dense/model.pt",
        dense_init=f"{RUN}/dense/init.pt",
    output:
        ticket=f"{RUN}/{{method}}/ticket.pt",
        info=f"{RUN}/{{method}}/ticket.json",
    params:
        method=method_json,
        settings=SETTINGS_JSON,
        dense=lambda wc, input: os.path.dirname(input.dense),
        last=lambda wc, input: os.path.dirname(input.last),
        out=lambda wc, output: os.path.dirname(output.ticket),
    log:
        "results/logs/{dataset}/{arch}/seed{seed}/{method}/ticket.log",
    benchmark:
        "results/benchmarks/{dataset}/{arch}/seed{seed}/{method}/ticket.tsv"
    threads: 1
    resources:
        gpu=1,
    conda:
        "../../environment.yml"
    shell:
        "infcop ticket --dataset {wildcards.dataset:q} --arch {wildcards.arch:q} --seed {wildcards.seed}"
        " --method {wildcards.method:q} --method-spec {params.method:q} --settings {params.settings:q}"
        " --dense {params.dense:q} --last {params.last:q} --threads {threads} --out {params.out:q} > {log:q} 2>&1"
