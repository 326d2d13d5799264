"""A batch regime, spelled one way everywhere. The config writes a regime as its batch size
(null: full batch); paths, the runs' `batch` column and every table name it "full" or by its
size as text ("64"); figures and sentences label it "full batch" or "batch 64"; the verdicts'
badges shorten it to "full" or "b64". A claim judged on every regime at once has the regime ALL.
"""

from __future__ import annotations

FULL = "full"
ALL = "all"


def name(batch_size: int | None) -> str:
    """The regime's name: "full" for full batch (None), else the batch size ("64")."""
    return FULL if batch_size is None else str(batch_size)


def batch_size(regime: str) -> int | None:
    return None if regime == FULL else int(regime)


def label(regime: str) -> str:
    """How a regime reads in a figure or a sentence: "full batch", "batch 64", "every batch size"."""
    return {FULL: "full batch", ALL: "every batch size"}.get(regime, f"batch {regime}")


def badge(regime: str) -> str:
    """A verdict badge's short form: "full", "b64", "every b"."""
    return {FULL: "full", ALL: "every b"}.get(regime, f"b{regime}")


def full_first(regime: str) -> tuple[int, int]:
    """A sort key: full batch first (the regime without sampling noise), then by batch size."""
    return (0, 0) if regime == FULL else (1, int(regime))


def by_batch_size(regime: str) -> tuple[bool, int]:
    """A sort key by batch size: the smallest first, full batch (every training point) last."""
    return (regime == FULL, 0 if regime == FULL else int(regime))
