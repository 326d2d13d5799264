rule aggregate:
    """Per-run summaries, per-cell statistics and curves."""
    input:
        runs=run_files(),
        code=CODE["aggregate"],
    output:
        aggregate_report_items(),
    log:
        "results/logs/aggregate.log",
    benchmark:
        "results/benchmarks/aggregate.tsv"
    conda:
        "../envs/optimizer_dynamics.yaml"
    params:
        # The run files are found from the config (study.run_files), not listed here: a
        # command naming every file would outgrow Linux's 128 KiB limit at ~1,900 runs.
        runs_dir=runs_dir,
        out_dir=output_dir,
        args=aggregate_args,
    message:
        f"aggregating {len(run_files())} runs"
    shell:
        '"$PYTHON" -m optimizer_dynamics.aggregate --runs-dir {params.runs_dir:q}'
        " --out-dir {params.out_dir:q} {params.args:q} > {log:q} 2>&1"


rule claims:
    """Each claim judged in each setting: prediction, effect, interval, verdict, headline; and
    the study's key findings, a sentence each; every good window the verdicts read."""
    input:
        aggregates=AGGREGATES,
        code=CODE["claims"],
    output:
        reported(
            VERDICTS,
            caption="../report/verdicts.rst",
            category="Tables",
            labels={"table": "verdicts.parquet"},
        ),
        KEY_FINDINGS,
        WINDOWS,
    log:
        "results/logs/claims.log",
    benchmark:
        "results/benchmarks/claims.tsv"
    conda:
        "../envs/optimizer_dynamics.yaml"
    params:
        aggregate_dir=output_dir,
    message:
        "judging the claims"
    shell:
        '"$PYTHON" -m optimizer_dynamics.claims --aggregate-dir {params.aggregate_dir:q} > {log:q} 2>&1'
