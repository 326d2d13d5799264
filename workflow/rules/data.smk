rule dataset:
    """The make_moons data set, built once and read by every training job."""
    input:
        code=CODE["dataset"],
    output:
        DATASET,
    log:
        "results/logs/dataset.log",
    conda:
        "../envs/optimizer_dynamics.yaml"
    params:
        args=dataset_args,
    shell:
        '"$PYTHON" -m optimizer_dynamics.data --out {output:q} {params.args:q} > {log:q} 2>&1'
