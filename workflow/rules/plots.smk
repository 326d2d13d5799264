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
    # Two processes draw the figures side by side: the job runs after the last training job,
    # when the cores are free (Snakemake gives it fewer where fewer are).
    threads: 2
    params:
        args=figures_args,
    message:
        "drawing the figures"
    shell:
        '"$PYTHON" -m optimizer_dynamics.figures {params.args:q} --jobs {threads} > {log:q} 2>&1'
