"""Draw the study's figures, one PNG and one SVG per figure file, from results/aggregate/ only.

Run: python -m optimizer_dynamics.figures --aggregate-dir results/aggregate --out-dir results/figures

Saving goes through Agg (PNG) and the SVG backend; the grid's figures are drawn once per regime
(its title says which); the curvature figures of a study without curvature runs say so and name
the config keys that turn them on.
"""

from __future__ import annotations

import argparse
import io
import math

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
from pathlib import Path

from optimizer_dynamics import batch_regime
from optimizer_dynamics.figures import FIGURES, figure_files
from optimizer_dynamics.atomic import atomic_path
from optimizer_dynamics.tables import Aggregate, AggregateError, load_aggregate


DPI = 150


STYLE = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "figure.titlesize": 13,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "optimizer-dynamics",  # fixed SVG element ids: identical input, identical file
}


def _tick_text(value: float, _position=None) -> str:
    return f"{value:g}"


def _minor_tick_text(value: float, _position=None) -> str:
    """Label the 2x and 5x minor ticks: on an axis spanning about a decade they are the only labels."""
    if value <= 0:
        return ""
    mantissa = value / 10 ** math.floor(math.log10(value))
    return f"{value:g}" if any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (2, 5)) else ""


def _plain_log_ticks(fig: Figure) -> Figure:
    """Log-axis ticks as plain numbers (0.01, 2, 50) instead of mathtext powers like 2x10^0."""
    for ax in fig.axes:
        for axis, scale, (low, high) in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()),
                                         (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
            if scale != "log" or not (low > 0 and high > 0):
                continue
            decades = abs(math.log10(high / low))
            if decades < 0.7:
                # Too narrow for the 1-2-5 ticks of a log axis (e.g. 14..18): evenly spaced ones.
                axis.set_major_locator(MaxNLocator(nbins=4))
            axis.set_major_formatter(FuncFormatter(_tick_text))
            label_minor = 0.7 <= decades < 1.5
            axis.set_minor_formatter(FuncFormatter(_minor_tick_text) if label_minor else NullFormatter())
    return fig


def build_figure(name: str, agg: Aggregate) -> Figure:
    return _plain_log_ticks(FIGURES[name].draw(agg))


def save_figure(fig: Figure, out_dir: Path, stem: str) -> list[Path]:
    """PNG and SVG, each written under a temporary name and renamed into place."""
    written = []
    for fmt, metadata in (("png", {"Software": None}), ("svg", {"Date": None, "Creator": None})):
        if written:
            # The layout is settled by the first save; recomputing it for the SVG doubles the time.
            fig.set_layout_engine("none")
        path = out_dir / f"{stem}.{fmt}"
        with atomic_path(path) as tmp:
            if fmt == "png":
                _save_palette_png(fig, tmp, metadata)
            else:
                fig.savefig(tmp, format=fmt, dpi=DPI, metadata=metadata)
        written.append(path)
    return written


def _save_palette_png(fig: Figure, path: Path, metadata: dict) -> None:
    """The PNG with a 256-colour palette: line plots have few colours, and the file is less than
    half the size of the full-colour one (the HTML report embeds every figure)."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata=metadata)
    image = Image.open(buffer).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, format="png", optimize=True)


def render_all(agg: Aggregate, out_dir: str | Path, stems: list[str] | None = None, jobs: int = 1) -> list[Path]:
    """Every figure file of figure_files (the grid's figures once per regime); `stems` picks
    figures by name; `jobs` processes draw them side by side (forked: each inherits agg)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [file for file in figure_files(agg.config) if not stems or file[1] in stems]
    if jobs <= 1 or len(files) <= 1:
        return [path for file in files for path in render_file(agg, out_dir, *file)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(jobs, len(files)), mp_context=multiprocessing.get_context("fork"),
                             initializer=_keep_aggregate, initargs=(agg, out_dir)) as pool:
        return [path for paths in pool.map(_render_kept, files) for path in paths]


_KEPT: dict = {}  # a worker's aggregate and output directory, inherited at fork


def _keep_aggregate(agg: Aggregate, out_dir: Path) -> None:
    _KEPT.update(agg=agg, out_dir=out_dir)


def _render_kept(file: tuple[str, str, str | None]) -> list[Path]:
    return render_file(_KEPT["agg"], _KEPT["out_dir"], *file)


def render_file(agg: Aggregate, out_dir: Path, stem: str, figure: str, regime: str | None) -> list[Path]:
    """One figure file: a study figure, or a grid figure in one regime (its title says which)."""
    with matplotlib.rc_context(STYLE):
        if regime is None:
            return save_figure(build_figure(figure, agg), out_dir, stem)
        fig = build_figure(figure, agg.in_regime(regime))
        fig.suptitle(f"[{batch_regime.label(regime)}] {fig.get_suptitle()}")
        return save_figure(fig, out_dir, stem)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--aggregate-dir", required=True,
                        help="directory with cells.parquet, curves.parquet, curvature.parquet, runs.parquet, "
                             "study.json")
    parser.add_argument("--out-dir", required=True, help="where <stem>.png and <stem>.svg are written")
    parser.add_argument("--only", nargs="+", choices=list(FIGURES), help="draw only these figures")
    parser.add_argument("--jobs", type=int, default=1, help="processes drawing figures side by side (default 1)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        agg = load_aggregate(args.aggregate_dir, with_verdicts=False)
    except AggregateError as error:
        parser.error(str(error))
    render_all(agg, args.out_dir, args.only, args.jobs)
