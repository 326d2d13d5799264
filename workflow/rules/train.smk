rule train:
    """All seeds of one (optimizer, lr, momentum) cell in one process, one file per seed."""
    input:
        data=DATASET,
    output:
        runs=expand(RUN, seed=SEEDS, allow_missing=True),
    log:
        f"results/logs/train/{GRID.wildcard_pattern}.log",
    benchmark:
        f"results/benchmarks/train/{GRID.wildcard_pattern}.tsv"
    conda:
        "../envs/optimizer_dynamics.yaml"
    threads: config["training"]["threads"]
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime_minutes,
    params:
        args=train_args,
    shell:
        "python -m optimizer_dynamics.train --data {input.data:q} --out {output.runs:q}"
        " --threads {threads} {params.args:q} > {log:q} 2>&1"
