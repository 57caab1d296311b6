# Tables across every run, then one job per figure. CPU only.
#
# The report (snakemake --report) in reading order: Snakemake sorts categories, subcategories and rows
# alphabetically, so their names are numbered (infcop.showing.report_html.report_place): 1. Results (the verdicts
# and frontier figures, then the summary page), 2. Method dashboards (similarity), 3. Diagnostics (every
# other figure). A figure's PNG and PDF are one row with a format toggle (labels).
from infcop.showing.report_html import figure_labels, report_place


rule tables:
    input:
        run_files(),
    output:
        **{
            t.replace(".", "_"): (
                report(
                    f"{LAYOUT.tables}/{t}",
                    caption="../report/tables.rst",
                    category=report_place("summary")[0],
                    subcategory=report_place("summary")[1],
                    labels={"summary": "table (summary.csv, download)"},
                )
                if t == L.SUMMARY_CSV
                else f"{LAYOUT.tables}/{t}"
            )
            for t in TABLES
        },
    log:
        LAYOUT.report_log("tables"),
    benchmark:
        LAYOUT.report_benchmark("tables")
    threads: 1
    params:
        key=stage_key("tables"),
        experiment=EXPERIMENT_RECORD,
        out=lambda wc, output: os.path.dirname(output[0]),
    shell:
        logged("infcop tables --config {params.experiment:q} --expect {params.key} --out {params.out:q}")


# summary.md as a self-contained HTML page: the report shows HTML inline (a .md or .csv is only a download).
rule summary_page:
    input:
        f"{LAYOUT.tables}/{L.SUMMARY_MD}",
    output:
        report(
            f"{LAYOUT.tables}/{L.SUMMARY_HTML}",
            caption="../report/summary.rst",
            category=report_place("summary")[0],
            subcategory=report_place("summary")[1],
            labels={"summary": "page (summary.md, rendered)"},
        ),
    log:
        LAYOUT.report_log("summary_page"),
    benchmark:
        LAYOUT.report_benchmark("summary_page")
    threads: 1
    params:
        root=lambda wc, input: os.path.dirname(os.path.dirname(input[0])),  # {root}/tables/summary.md
    shell:
        logged("infcop summary {params.root:q} --html {output:q}")


rule figure:
    input:
        expand(f"{LAYOUT.tables}/{{table}}", table=TABLES),
    output:
        pdf=report(
            f"{LAYOUT.figures}/{{figure}}.pdf",
            caption="../report/figure.rst",
            category=lambda wc: report_place(wc.figure)[0],
            subcategory=lambda wc: report_place(wc.figure)[1],
            labels=lambda wc: figure_labels(wc.figure, ".pdf"),
        ),
        png=report(
            f"{LAYOUT.figures}/{{figure}}.png",
            caption="../report/figure.rst",
            category=lambda wc: report_place(wc.figure)[0],
            subcategory=lambda wc: report_place(wc.figure)[1],
            labels=lambda wc: figure_labels(wc.figure, ".png"),
        ),
    log:
        LAYOUT.report_log("figures/{figure}"),
    benchmark:
        LAYOUT.report_benchmark("figures/{figure}")
    threads: 1
    params:
        tables=lambda wc, input: os.path.dirname(input[0]),
    shell:
        logged("infcop plot {wildcards.figure} --tables {params.tables:q} --out {output.pdf:q}")


# The dashboard: every (dataset, arch, method) page in one PDF, and one PNG per method.
rule similarity:
    input:
        expand(f"{LAYOUT.tables}/{{table}}", table=TABLES),
    output:
        pdf=report(
            f"{LAYOUT.figures}/similarity.pdf",
            caption="../report/similarity.rst",
            category=report_place("similarity")[0],
            subcategory=report_place("similarity")[1],
            labels={"method": "(all methods: PDF, one page each)"},  # sorts before the names
        ),
        pngs=[
            report(
                str(p),
                caption="../report/similarity.rst",
                category=report_place("similarity")[0],
                subcategory=report_place("similarity")[1],
                labels={"method": m},
            )
            for m, p in zip(
                EXP["methods"], figure_outputs("similarity", f"{LAYOUT.figures}/similarity.pdf", EXP["methods"])[1:]
            )
        ],
    log:
        LAYOUT.report_log("figures/similarity"),
    benchmark:
        LAYOUT.report_benchmark("figures/similarity")
    threads: 1
    params:
        tables=lambda wc, input: os.path.dirname(input[0]),
    shell:
        logged("infcop plot similarity --tables {params.tables:q} --out {output.pdf:q}")
