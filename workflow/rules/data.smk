rule dataset:
    """The make_moons data set, built once and read by every training job."""
    output:
        DATASET,
    log:
        "results/logs/dataset.log",
    conda:
        "../envs/optimizer_dynamics.yaml"
    params:
        args=dataset_args,
    shell:
        "python -m optimizer_dynamics.data --out {output:q} {params.args:q} > {log:q} 2>&1"
