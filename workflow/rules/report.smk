rule report:
    """The findings report: one self-contained HTML page with the verdict table, and a PDF."""
    input:
        source=REPORT_SOURCE,
        style=REPORT_STYLE,
        code=CODE["report"],
        aggregates=[*AGGREGATES, VERDICTS, KEY_FINDINGS, WINDOWS],
        figures=FIGURES,
    output:
        html=report(REPORT_HTML, caption="../report/findings.rst", category="Report"),
        pdf=report(REPORT_PDF, caption="../report/findings.rst", category="Report"),
    log:
        "results/logs/report.log",
    benchmark:
        "results/benchmarks/report.tsv"
    conda:
        "../envs/optimizer_dynamics.yaml"
    # the HTML and the PDF are built side by side (the last job: the cores are free)
    threads: 2
    params:
        args=report_args,
    message:
        "rendering the report"
    shell:
        '"$PYTHON" -m optimizer_dynamics.report {params.args:q} > {log:q} 2>&1'
