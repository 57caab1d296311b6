"""Showing the results: the figures (plots/, one module per figure, drawn from the tidy tables alone) and the
pieces of the Snakemake report that infcop makes (report_html). Nothing here trains or judges."""
