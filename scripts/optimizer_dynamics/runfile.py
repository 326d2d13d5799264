"""One Parquet file per run: a row per step, the run config as columns and as metadata.

Every file has the same schema whatever its config (null batch_size, no divergence, ...),
so `pandas.read_parquet("results/runs")` reads the whole study in one call.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from optimizer_dynamics.atomic import atomic_path
from optimizer_dynamics.config import RunConfig

METADATA_KEY = b"optimizer_dynamics"
_ARROW_TYPES = {"str": pa.string(), "float": pa.float64(), "int": pa.int64(), "int | None": pa.int64(), "bool": pa.bool_()}


def run_schema_fields() -> list[pa.Field]:
    """The run-level columns: config fields, the regime's name, then the divergence outcome."""
    fields = [pa.field(f.name, _ARROW_TYPES[f.type]) for f in dataclasses.fields(RunConfig)]
    return fields + [
        pa.field("batch", pa.string()),
        pa.field("diverged", pa.bool_()),
        pa.field("diverged_step", pa.int64()),
        pa.field("diverged_cause", pa.string()),
    ]


def write_run(log, path: str | Path) -> None:
    """Write atomically: a temporary file renamed into place, so a killed job leaves no
    file that looks complete."""
    import torch  # already loaded by the training job; only its version is recorded

    n = len(log.columns["step"])
    run_values = {**log.config.to_dict(), "batch": log.config.batch, "diverged": log.diverged,
                  "diverged_step": log.diverged_step, "diverged_cause": log.diverged_cause}
    arrays, fields = [], []
    for field in run_schema_fields():
        arrays.append(pa.array([run_values[field.name]] * n, type=field.type))
        fields.append(field)
    for name, values in log.columns.items():
        dtype = pa.int64() if name == "step" else pa.float64()
        arrays.append(pa.array(np.asarray(values), type=dtype))
        fields.append(pa.field(name, dtype))
    metadata = {
        "config": log.config.to_dict(),
        "diverged": log.diverged,
        "diverged_step": log.diverged_step,
        "diverged_cause": log.diverged_cause,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "numpy": np.__version__, "pyarrow": pa.__version__},
    }
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata)}))
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_metadata(path: str | Path) -> dict:
    return schema_metadata(pq.read_schema(path))


def schema_metadata(schema: pa.Schema) -> dict:
    """The run's config, outcome and library versions, stored in its file's schema."""
    return json.loads(schema.metadata[METADATA_KEY])
