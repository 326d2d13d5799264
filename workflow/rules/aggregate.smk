rule aggregate:
    """Per-run summaries, per-cell statistics, curves and the claims' verdicts."""
    input:
        runs=run_files(),
    output:
        AGGREGATES,
    log:
        "results/logs/aggregate.log",
    benchmark:
        "results/benchmarks/aggregate.tsv"
    conda:
        "../envs/optimizer_dynamics.yaml"
    params:
        out_dir=output_dir,
        args=aggregate_args,
    shell:
        "python -m optimizer_dynamics.aggregate --runs {input.runs:q}"
        " --out-dir {params.out_dir:q} {params.args:q} > {log:q} 2>&1"
