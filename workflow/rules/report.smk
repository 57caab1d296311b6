# Tables across every run, then one job per figure. CPU only.
rule tables:
    input:
        run_files(),
    output:
        **{
            t.replace(".", "_"): report(
                f"{LAYOUT.tables}/{t}",
                caption="../report/tables.rst",
                category="Tables",
            )
            if t in ("summary.csv", "summary.md")
            else f"{LAYOUT.tables}/{t}"
            for t in TABLES
        },
    params:
        key=stage_key("tables"),
        experiment=EXPERIMENT_RECORD,
        out=lambda wc, output: os.path.dirname(output[0]),
    log:
        LAYOUT.report_log("tables"),
    benchmark:
        LAYOUT.report_benchmark("tables")
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        logged(
            "infcop tables --config {params.experiment:q} --expect {params.key} --out {params.out:q}"
        )


rule figure:
    input:
        expand(f"{LAYOUT.tables}/{{table}}", table=TABLES),
    output:
        pdf=report(
            f"{LAYOUT.figures}/{{figure}}.pdf",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="PDF",
        ),
        png=report(
            f"{LAYOUT.figures}/{{figure}}.png",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="Quick look",
        ),
    params:
        tables=lambda wc, input: os.path.dirname(input[0]),
    log:
        LAYOUT.report_log("figures/{figure}"),
    benchmark:
        LAYOUT.report_benchmark("figures/{figure}")
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        logged(
            "infcop plot {wildcards.figure} --tables {params.tables:q} --out {output.pdf:q}"
        )


# The dashboard: every (dataset, arch, method) page in one PDF, and one PNG per method.
rule similarity:
    input:
        expand(f"{LAYOUT.tables}/{{table}}", table=TABLES),
    output:
        pdf=report(
            f"{LAYOUT.figures}/similarity.pdf",
            caption="../report/similarity.rst",
            category="Figures",
            subcategory="PDF",
        ),
        pngs=[
            report(
                str(p),
                caption="../report/similarity.rst",
                category="Figures",
                subcategory="Quick look",
            )
            for p in figure_outputs("similarity", f"{LAYOUT.figures}/similarity.pdf", EXP["methods"])[1:]
        ],
    params:
        tables=lambda wc, input: os.path.dirname(input[0]),
    log:
        LAYOUT.report_log("figures/similarity"),
    benchmark:
        LAYOUT.report_benchmark("figures/similarity")
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        logged(
            "infcop plot similarity --tables {params.tables:q} --out {output.pdf:q}"
        )
