rule figures:
    """Every figure of the report, as PNG and SVG."""
    input:
        aggregates=AGGREGATES,
        code=CODE["figures"],
    output:
        figure_report_items(),
    log:
        "results/logs/figures.log",
    benchmark:
        "results/benchmarks/figures.tsv"
    conda:
        "../envs/optimizer_dynamics.yaml"
    params:
        args=figures_args,
    shell:
        '"$PYTHON" -m optimizer_dynamics.figures {params.args:q} > {log:q} 2>&1'
