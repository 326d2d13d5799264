"""optimizer-dynamics: how SGD, SGD with momentum and Adam move a small network's weights.

Modules, one job each:
    config      RunConfig, the validated settings of one training run
    checks      the workflow config's checks beyond its schema, and the words of each refusal
    study       the grid: cells, run files and training blocks, for the workflow and aggregation
    provenance  the package modules a command executes (rules list them as inputs)
    data        make_moons, standardized, saved once for every training job
    model       the MLP over flat parameter vectors, R runs stacked, closed-form backward
    optimizers  the registry, one module per optimizer: batched update, reference, threshold, labels
    metrics     per-step diagnostics computed in bulk over (runs, steps, parameters)
    curvature   the exact Hessian and its spectrum
    train       the block training loop and its command line
    runfile     atomic Parquet output with the run config as columns and metadata
    aggregate, stats, claims, figures, report: the analysis and its presentation
"""
