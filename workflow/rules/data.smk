rule dataset:
    """A problem's data set (make_moons and the problem's transform), built once and read by
    every training job on that problem."""
    input:
        code=CODE["dataset"],
    output:
        DATASET,
    log:
        "results/logs/dataset/{problem}.log",
    conda:
        "../envs/optimizer_dynamics.yaml"
    params:
        args=dataset_args,
    message:
        "building the {wildcards.problem} data set"
    shell:
        '"$PYTHON" -m optimizer_dynamics.data --out {output:q} {params.args:q} > {log:q} 2>&1'
