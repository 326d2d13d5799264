"""Figures: every stem is written, and what a figure draws is the aggregate's data."""

from __future__ import annotations

import dataclasses
import io
import math
import struct

import numpy as np
import pandas as pd
import pytest

from conftest import tiny_study_config
from optimizer_dynamics import figures, tables
from optimizer_dynamics.figures import render
from optimizer_dynamics.figures.drawing import NOT_IN_STUDY
from optimizer_dynamics.optimizers import OPTIMIZERS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def agg(tiny_aggregate) -> figures.Aggregate:
    return tables.load_aggregate(tiny_aggregate)


@pytest.fixture(scope="module")
def rendered(tiny_aggregate, tmp_path_factory):
    out = tmp_path_factory.mktemp("figures")
    render.main(["--aggregate-dir", str(tiny_aggregate), "--out-dir", str(out)])
    return out


def png_size(path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])  # IHDR: width, height


STEMS = figures.figure_stems(tiny_study_config())  # lr_sensitivity_full, ..., sharpness


@pytest.mark.parametrize("stem", STEMS)
def test_every_stem_is_written_as_png_and_svg(rendered, stem):
    width, height = png_size(rendered / f"{stem}.png")
    # Report width at 150 dpi: wider than a thumbnail, smaller than a poster.
    assert 900 <= width <= 4000 and 450 <= height <= 2500, (width, height)
    svg = (rendered / f"{stem}.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and svg.rstrip().endswith("</svg>")


def test_only_the_figures_are_left_in_the_out_dir(rendered):
    expected = {f"{stem}.{fmt}" for stem in STEMS for fmt in ("png", "svg")}
    assert {path.name for path in rendered.iterdir()} == expected  # no temporary files


def test_rendering_is_deterministic(tiny_aggregate, rendered, tmp_path):
    argv = ["--aggregate-dir", str(tiny_aggregate), "--out-dir", str(tmp_path), "--only", "lr_sensitivity"]
    render.main(argv)
    for fmt in ("png", "svg"):
        name = f"lr_sensitivity_full.{fmt}"
        assert (tmp_path / name).read_bytes() == (rendered / name).read_bytes(), name


def test_figures_drawn_side_by_side_are_the_same_files(tiny_aggregate, rendered, tmp_path):
    # --jobs 2: forked processes, each drawing some of the figures, write the same bytes
    render.main(["--aggregate-dir", str(tiny_aggregate), "--out-dir", str(tmp_path), "--jobs", "2"])
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(path.name for path in rendered.iterdir())
    for path in rendered.iterdir():
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def _axes_titled(fig, prefix: str):
    return next(ax for ax in fig.axes if ax.get_title().startswith(prefix))


def test_effective_step_draws_sgd_measured_line_at_lr(agg):
    fig = figures.FIGURES["effective_step"].draw(agg)
    ax = _axes_titled(fig, "SGD")
    measured = [line for line in ax.lines if line.get_gid() == "measured"]
    reference_levels = [line.get_ydata()[0] for line in ax.lines if line.get_gid() == "lr"]
    finished = agg.cell_rows("sgd", momentum=0.0).query("n_diverged == 0")
    assert len(measured) == len(finished) > 0  # the tiny grid has fewer lrs than a panel shows
    for line in measured:
        lr = float(line.get_label().removeprefix("lr "))
        curve = agg.curve("sgd", lr, 0.0, "eff_step.global")
        np.testing.assert_array_equal(line.get_xdata(), curve["step"])
        np.testing.assert_allclose(line.get_ydata(), curve["mean"])
        # Plain SGD: the measured line lies on y = lr, which is drawn as its reference.
        np.testing.assert_allclose(line.get_ydata(), lr, rtol=1e-9)
        assert any(math.isclose(level, lr) for level in reference_levels)


def test_effective_step_draws_adam_off_its_lr(agg):
    fig = figures.FIGURES["effective_step"].draw(agg)
    ax = _axes_titled(fig, "Adam")
    measured = [line for line in ax.lines if line.get_gid() == "measured"]
    assert measured
    for line in measured:
        lr = float(line.get_label().removeprefix("lr "))
        assert not np.allclose(line.get_ydata(), lr, rtol=1e-3)


def test_lr_sensitivity_marks_every_cell_whose_median_diverged(agg):
    fig = figures.FIGURES["lr_sensitivity"].draw(agg)
    n_marked = 0
    for optimizer in ("sgd", "adam"):
        ax = _axes_titled(fig, OPTIMIZERS[optimizer].label)
        cells = agg.cell_rows(optimizer)
        diverged = cells[~np.isfinite(cells["median_final_val_loss"])]
        marks = [line.get_xdata()[0] for line in ax.lines if line.get_gid() == "diverged"]
        assert sorted(marks) == sorted(diverged["lr"])
        texts = [text.get_text() for text in ax.texts]
        for cell in diverged.itertuples():
            assert f"{cell.n_diverged}/{cell.n_runs}" in texts
        n_marked += len(marks)
    assert n_marked > 0, "the tiny study is meant to contain a diverged cell"


def test_momentum_figure_plots_measured_late_step_against_prediction(agg):
    fig = figures.FIGURES["momentum"].draw(agg)
    ax = _axes_titled(fig, "late effective step")
    containers = {c.get_label(): c for c in ax.containers}
    sgd = agg.cell_rows("sgd").query("n_diverged < n_runs")
    assert set(containers) == {f"momentum {m:g}" for m in sgd["momentum"].unique()}
    for momentum, cells in sgd.groupby("momentum"):
        line = containers[f"momentum {momentum:g}"].lines[0]
        np.testing.assert_allclose(line.get_xdata(), cells["lr"] / (1 - momentum))
        np.testing.assert_allclose(line.get_ydata(), cells["eff_step_late_mean"])


def _all_text(fig) -> str:
    return "\n".join(text.get_text() for ax in fig.axes for text in ax.texts)


def test_missing_reference_and_momentum_axis_become_notes(agg):
    # A study without an analysis section and without SGD momentum > 0.
    keep = (agg.cells["optimizer"] != "sgd") | (agg.cells["momentum"] == 0)
    curves_keep = (agg.curves["optimizer"] != "sgd") | (agg.curves["momentum"] == 0)
    partial = dataclasses.replace(agg, cells=agg.cells[keep], curves=agg.curves[curves_keep],
                                  config={k: v for k, v in agg.config.items() if k != "analysis"})
    # noise: noise_every 0; conditioning, batch_gap, stochastic_edge, eps_overlay: no such runs
    noted = {"loss_curves", "norms", "saturation", "adaptivity", "momentum", "noise", "conditioning", "batch_gap",
             "stochastic_edge", "eps_overlay"}
    for stem in figures.FIGURES:
        fig = render.build_figure(stem, partial)
        fig.savefig(io.BytesIO(), format="png")  # drawing must not fail either
        assert (NOT_IN_STUDY in _all_text(fig)) == (stem in noted), stem


def test_missing_optimizer_gets_a_note(agg):
    adam_only = dataclasses.replace(agg, cells=agg.cells[agg.cells["optimizer"] == "adam"],
                                    curves=agg.curves[agg.curves["optimizer"] == "adam"])
    for stem in ("effective_step", "lr_sensitivity"):
        fig = render.build_figure(stem, adam_only)
        fig.savefig(io.BytesIO(), format="png")
        assert f"SGD: {NOT_IN_STUDY}" in _all_text(fig), stem


def test_missing_aggregate_file_is_named(tiny_aggregate, tmp_path, capsys):
    for name in tables.AGGREGATE_FILES:
        if name != "curves.parquet":
            (tmp_path / name).write_bytes((tiny_aggregate / name).read_bytes())
    with pytest.raises(SystemExit):
        render.main(["--aggregate-dir", str(tmp_path), "--out-dir", str(tmp_path / "out")])
    assert "curves.parquet: missing" in capsys.readouterr().err


def test_missing_column_is_named(tiny_aggregate, tmp_path):
    for name in ("curves.parquet", "study.json"):
        (tmp_path / name).write_bytes((tiny_aggregate / name).read_bytes())
    pd.read_parquet(tiny_aggregate / "cells.parquet").drop(columns="in_good_window").to_parquet(
        tmp_path / "cells.parquet")
    message = r"cells\.parquet: columns \['in_good_window'\] are missing"
    with pytest.raises(tables.AggregateError, match=message):
        tables.load_aggregate(tmp_path)


def test_the_batch_gap_figure_draws_each_optimizers_best_loss_at_every_batch_size(agg):
    # batch-size runs at batch 8, made of the full-batch cells; only lrs every batch size has count
    extra = agg.cells.assign(batch="8")
    extra = pd.concat([extra, extra.assign(lr=extra["lr"] * 7, median_final_val_loss=1e-6)])  # batch 8 only
    study = dataclasses.replace(agg, side_cells_by_budget={**agg.side_cells_by_budget, "batch_sizes": extra})
    ax = render.build_figure("batch_gap", study).axes[0]
    drawn = [line for line in ax.containers if line.lines[0].get_gid() == "best"]
    assert len(drawn) == 2  # plain SGD and Adam
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["8", f"full ({agg.config['data']['n_train']})"]
    for container, optimizer in zip(drawn, ("sgd", "adam")):
        x, y = container.lines[0].get_data()
        assert list(x) == [0, 1]
        best = tables.select(agg.cells, optimizer=optimizer, momentum=agg.reference(optimizer)[1])[
            "median_final_val_loss"].min()
        assert y[0] == pytest.approx(best) and y[1] == pytest.approx(best)  # not the 1e-6 of batch 8's own lrs


def test_the_eps_overlay_figure_puts_adam_on_the_heavy_ball_lr_axis(agg):
    # Adam cells at eps 1 made of the heavy-ball cells at lr x eps / (1 - beta1): on the heavy-ball
    # axis they must fall on heavy ball's points exactly
    heavy = tables.select(agg.cells, optimizer="sgd", momentum=0.9)
    adam = heavy.assign(optimizer="adam", hyperparameters="beta2=0.999,eps=1", lr=heavy["lr"] / (1 - 0.9))
    study = dataclasses.replace(agg, side_cells_by_budget={**agg.side_cells_by_budget, "epsilon": adam})
    ax = render.build_figure("eps_overlay", study).axes[0]
    lines = {line.get_gid(): line for line in ax.lines if line.get_gid()}
    finite = heavy.sort_values("lr")
    finite = finite[np.isfinite(finite["median_final_val_loss"])]
    for gid in ("heavy_ball", "adam"):
        x, y = lines[gid].get_data()
        np.testing.assert_allclose(x, finite["lr"], rtol=1e-12)
        np.testing.assert_allclose(y, finite["median_final_val_loss"])


def test_snakemakes_caption_files_are_the_figures_captions_generated():
    from optimizer_dynamics.figures import captions

    captions.main(["--check"])  # exits 1 where a file is stale, missing or left over
    assert set(captions.caption_files()) == {f"{name}.rst" for name in figures.FIGURES}
    assert captions.rst_text("mean |logit| of B_simple") == r"mean \|logit\| of B\_simple"  # no rst markup


def test_the_figures_snakemake_plans_with_are_the_registered_ones():
    """figure_files reads names and regimes from the modules' sources: they agree with the entries."""
    assert figures.declared() == [(entry.name, entry.per_regime) for entry in figures.FIGURES.values()]
