# Tables across every run, then one job per figure. CPU only.
rule tables:
    input:
        run_files(),
    output:
        **{
            t.replace(".", "_"): report(
                f"results/tables/{t}",
                caption="../report/tables.rst",
                category="Tables",
            )
            if t in ("summary.csv", "summary.md")
            else f"results/tables/{t}"
            for t in TABLES
        },
    params:
        runs=runs(),
        methods=_dumps(METHODS),
    log:
        "results/logs/tables.log",
    benchmark:
        "results/benchmarks/tables.tsv"
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "infcop tables --runs {params.runs:q} --methods {params.methods:q} --out results/tables > {log:q} 2>&1"


rule figure:
    input:
        expand("results/tables/{table}", table=TABLES),
    output:
        pdf=report(
            "results/figures/{figure}.pdf",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="PDF",
        ),
        png=report(
            "results/figures/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="Quick look",
        ),
    log:
        "results/logs/figures/{figure}.log",
    benchmark:
        "results/benchmarks/figures/{figure}.tsv"
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "infcop plot {wildcards.figure} --tables results/tables --out {output.pdf:q} > {log:q} 2>&1"
