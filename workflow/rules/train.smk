# One training job per block of runs (training.block: every lr and seed of an optimizer x
# momentum line, or one cell): its runs train stacked in one process, one file per run.
for block in BLOCKS:

    rule:
        name:
            block.name
        input:
            data=DATASET.format(problem=block.problem),
            code=CODE["train"],
        output:
            runs=block.run_files(SEEDS),
        log:
            f"results/logs/train/{block.log_stem}.log",
        benchmark:
            f"results/benchmarks/train/{block.log_stem}.tsv"
        conda:
            "../envs/optimizer_dynamics.yaml"
        threads: config["training"]["threads"]
        resources:
            mem_mb=train_mem_mb(block),
            runtime=train_runtime_minutes(block),
        params:
            args=train_args(block),
        message:
            block.describe(SEEDS)
        shell:
            '"$PYTHON" -m optimizer_dynamics.train --data {input.data:q} --out {output.runs:q}'
            " --threads {threads} {params.args:q} > {log:q} 2>&1"
