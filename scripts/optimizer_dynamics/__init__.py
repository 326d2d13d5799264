"""optimizer-dynamics: how SGD, SGD with momentum and Adam move a small network's weights.

Modules, one job each:
    config      RunConfig, the validated settings of one training run
    data        make_moons, standardized, saved once for every training job
    model       the MLP 2 -> hidden -> 1 over one flat parameter vector
    optimizers  registry of torch.optim constructors
    metrics     per-step diagnostics computed in bulk from recorded trajectories
    train       the training loop and its command line
    runfile     atomic Parquet output with the run config as columns and metadata
"""
