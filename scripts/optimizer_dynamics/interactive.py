"""The report's interactive figures: Vega-Lite charts built with Altair from the aggregate
tables, for the HTML page only (the PDF keeps the static figures).

    lr_sensitivity_chart(cells, windows, claimed, regime): median validation loss against lr per
        optimizer, with each line's good window, the seed's claimed window and the divergences;
        selectors for the regime (opening on the report's), the metric (final or selected val loss)
        and the budget; clicking a momentum in the legend picks it out.
    curve_explorer_chart(curves, curvature, start, cells): a map of every grid cell (a click adds
        its curves), and up to three cells' curves overlaid against step
        (val loss, effective step, update cosine, and the sharpness where a curvature run measured
        it), each cell chosen from a menu of the cells that exist; the band is the 95 % interval
        over seeds (the seeds' range for the sharpness); hovering marks a step in every panel and
        shows the values.
    embed(charts): the charts as HTML: one vega-embed bundle (vl-convert's, so nothing is fetched
        from a CDN) and the data inline.

The curves are thinned to log-spaced steps (CURVE_POINTS per curve) and every 1/LATE_POINTS of the
run, so the page stays small and late training keeps a stretch of points.
"""

from __future__ import annotations

import json

import altair as alt
import numpy as np
import pandas as pd

from optimizer_dynamics import batch_regime
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.tables import LOSS_METRICS

CURVE_POINTS = 30  # steps kept per curve, log-spaced
LATE_POINTS = 16  # ... and every 1/16 of the run
EXPLORER_SLOTS = 3  # cells the curve explorer overlays
# The curves shown by short labels (the CSV repeats them on every row), and the panels' order.
CURVE_METRICS = {"val.loss": "val loss", "eff_step.global": "‖update‖ / ‖grad‖", "update.cosine": "update cosine"}
SHARPNESS = "sharpness λmax(H)"
QUANTITIES = [*CURVE_METRICS.values(), SHARPNESS]
# px: a curve explorer panel, and a panel of the lr sweep (two a row): inside the text column of
# report/style.css (60rem) with their axes and legends
WIDTH = 560
SWEEP_WIDTH = 300
ALONE_WIDTH = 1.12  # a good window of one lr is drawn from lr / 1.12 to lr x 1.12


def inline_csv(frame: pd.DataFrame, numbers: list[str]) -> alt.Data:
    """The rows as CSV text inside the spec, numbers at 4 significant digits: a third of the size
    of Vega-Lite's JSON rows."""
    text = frame.to_csv(index=False, float_format="%.4g")
    return alt.Data(values=text, format=alt.DataFormat(type="csv", parse={name: "number" for name in numbers}))


def _select(name: str, options: list, label: str) -> alt.Parameter:
    """A dropdown selector named `label`, at its first option."""
    return alt.param(name=name, value=options[0], bind=alt.binding_select(options=options, name=f"{label} "))


def lr_sensitivity_chart(cells: pd.DataFrame, windows: pd.DataFrame, claimed: dict, regime: str) -> alt.Chart:
    """cells.parquet (every budget): one line per (optimizer, momentum) and a point per lr; behind
    them each line's good window (windows.parquet, the verdicts' windows) and the seed's claimed
    window (`claimed`: optimizer -> [lo, hi], outlined); a cross at the top where seeds diverged.
    Opens on `regime`, the final val loss and the whole run."""
    rows = []
    for metric, (_, median, _) in LOSS_METRICS.items():
        rows.append(cells.assign(metric=f"{metric} val loss", loss=cells[median]))
    curves = pd.concat(rows, ignore_index=True).assign(kind="curve")
    windows = windows[windows["missing"].isna()].assign(kind="window", metric=windows["metric"] + " val loss")
    # a window of one grid lr, drawn a little wide so it shows
    alone = windows["lo"] == windows["hi"]
    windows = windows.assign(lo=windows["lo"].where(~alone, windows["lo"] / ALONE_WIDTH),
                             hi=windows["hi"].where(~alone, windows["hi"] * ALONE_WIDTH))
    outlined = pd.DataFrame([{"kind": "claimed", "optimizer": name, "lo": lo, "hi": hi}
                             for name, (lo, hi) in claimed.items() if name in set(cells["optimizer"])])
    data = pd.concat([curves, windows, outlined], ignore_index=True)
    data = data.assign(regime=data["batch"].map(batch_regime.label, na_action="ignore"),
                       budget=(100 * data["budget"]).round().astype("Int64"),
                       momentum=data["momentum"].map(lambda m: f"{m:g}", na_action="ignore"),
                       optimizer=data["optimizer"].map(lambda name: OPTIMIZERS[name].label),
                       loss=data["loss"].where(np.isfinite(data["loss"])))  # +inf: half or more diverged, a gap
    data = data[["kind", "regime", "metric", "budget", "optimizer", "momentum", "lr", "loss", "n_diverged", "n_runs",
                 "lo", "hi"]]
    options = {name: data[name].dropna().unique() for name in ("regime", "metric", "budget")}
    chosen_regime = _select("regime", sorted(options["regime"], key=lambda r: r != batch_regime.label(regime)),
                            "regime")
    metric = _select("metric", sorted(options["metric"], key=lambda m: not m.startswith("final")), "metric")
    budget = _select("budget", sorted(options["budget"].tolist(), reverse=True), "budget (% of the steps)")
    momentum = alt.selection_point(name="momentum", fields=["momentum"], bind="legend")
    # Every layer draws in every panel (a layer with no rows in a panel makes Vega warn of an
    # infinite extent): the claimed windows share the rectangles' layer, the crosses the line's rows.
    base = alt.Chart().encode(x=alt.X("lr:Q", scale=alt.Scale(type="log"), title="learning rate"))
    # the momenta of the lines only: a claimed window has none
    momenta = sorted(data["momentum"].dropna().unique(), key=float)
    color = alt.Color("momentum:N", title="momentum / β₁", scale=alt.Scale(domain=momenta))
    claimed_rect = alt.datum.kind == "claimed"
    rects = base.mark_rect(strokeDash=[4, 3]).encode(
        x="lo:Q", x2="hi:Q",
        color=alt.condition(claimed_rect, alt.value("transparent"), color),
        fillOpacity=alt.condition(momentum, alt.value(0.12), alt.value(0.03)),
        stroke=alt.condition(claimed_rect, alt.value("#555"), alt.value("transparent")),
        tooltip=["kind:N", "momentum:N", alt.Tooltip("lo:Q", title="from"), alt.Tooltip("hi:Q", title="to")],
    ).transform_filter(alt.datum.kind != "curve")
    line = base.mark_line(point=True).encode(
        y=alt.Y("loss:Q", scale=alt.Scale(type="log", nice=False), title="median validation loss over seeds"),
        color=color, opacity=alt.condition(momentum, alt.value(1.0), alt.value(0.15)),
        tooltip=["optimizer:N", "momentum:N", "lr:Q", alt.Tooltip("loss:Q", format=".4g"), "n_diverged:Q", "n_runs:Q"],
    ).transform_filter(alt.datum.kind == "curve")
    crosses = line.mark_point(shape="cross", filled=True, size=60).encode(
        y=alt.value(6),
        opacity=alt.condition(momentum, alt.Opacity("diverged:Q", scale=None, legend=None), alt.value(0)),
        tooltip=["optimizer:N", "momentum:N", "lr:Q", alt.Tooltip("n_diverged:Q", title="diverged seeds"), "n_runs:Q"],
    ).transform_calculate(diverged="datum.n_diverged > 0 ? 1 : 0")
    in_view = ((alt.datum.kind == "claimed")
               | ((alt.datum.regime == chosen_regime) & (alt.datum.metric == metric) & (alt.datum.budget == budget)))
    return (
        alt.layer(rects, line, crosses, width=SWEEP_WIDTH, height=200)
        .add_params(chosen_regime, metric, budget, momentum)
        .facet(facet=alt.Facet("optimizer:N", title=None), columns=2,
               data=inline_csv(data, ["budget", "lr", "loss", "n_diverged", "n_runs", "lo", "hi"]))
        .transform_filter(in_view)
        .resolve_scale(x="independent")
        .properties(title=["lr sensitivity: shaded, each line's good window; dashed outline, the seed's claimed "
                           "window; ×, seeds that diverged", "choose the regime, the metric and the budget; click a "
                           "momentum"])
    )


def log_spaced_steps(steps: np.ndarray, points: int = CURVE_POINTS) -> np.ndarray:
    """About `points` of the given steps, log-spaced (the early steps move fastest), the last kept."""
    steps = np.unique(steps)
    if len(steps) <= points:
        return steps
    wanted = np.unique(np.geomspace(1, len(steps), points).astype(int) - 1)
    return steps[wanted]


def explorer_steps(steps: np.ndarray) -> np.ndarray:
    """The log-spaced steps and every 1/LATE_POINTS of the run besides, so late training is a stretch
    of points, not the last one."""
    steps = np.unique(steps)
    if len(steps) <= CURVE_POINTS:
        return steps
    even = steps[np.unique(np.linspace(0, len(steps) - 1, LATE_POINTS + 1).round().astype(int))]
    return np.union1d(log_spaced_steps(steps), even)


def cell_text(optimizer: str, lr: float, momentum: float, batch: str) -> str:
    """"Adam β₁ 0.9, lr 0.001, batch 64": a cell as the explorer's menus and legend name it."""
    entry = OPTIMIZERS[optimizer]
    return f"{entry.label} {entry.momentum_symbol} {momentum:g}, lr {lr:g}, {batch_regime.label(batch)}"


def curve_explorer_chart(curves: pd.DataFrame, curvature: pd.DataFrame, start: list[dict],
                         cells: pd.DataFrame) -> dict:
    """curves.parquet and curvature.parquet: up to EXPLORER_SLOTS cells' curves overlaid, a panel per
    quantity; `start` are the cells shown first ({optimizer, lr, momentum, batch} each). The menus
    list the cells that exist (a curvature run is a cell of its own: full batch, its own steps); a
    quantity no chosen cell has gets no panel. Above them, a heat map of the grid's cells (whole
    runs of cells.parquet): median final val loss per lr and momentum, a panel per regime and
    optimizer; a click on a cell adds its curves (a double click removes them)."""
    chosen = curves[curves["metric"].isin(CURVE_METRICS)]
    chosen = chosen[chosen["step"].isin(explorer_steps(chosen["step"].to_numpy()))]
    chosen = chosen.assign(quantity=chosen["metric"].map(CURVE_METRICS), kind="")
    sharp = curvature.groupby(["batch", "optimizer", "lr", "momentum", "step"], as_index=False)["sharpness"].agg(
        mean="mean", lo="min", hi="max")
    sharp = sharp[sharp["step"].isin(explorer_steps(sharp["step"].to_numpy()))]
    data = pd.concat([chosen, sharp.assign(quantity=SHARPNESS, kind=", curvature run")], ignore_index=True)
    cell_key = ["optimizer", "batch", "momentum", "lr", "kind"]
    keys = data[cell_key].drop_duplicates()
    keys = (keys.assign(order=keys["optimizer"].map(list(OPTIMIZERS).index))
            .sort_values(["kind", "order", "batch", "momentum", "lr"]).reset_index(drop=True)[cell_key])
    labels = [cell_text(k.optimizer, k.lr, k.momentum, k.batch) + k.kind for k in keys.itertuples()]
    # small integer codes in the CSV, their names in the spec once: the rows are most of the page's size
    data = data.merge(keys.assign(cell=keys.index), on=cell_key, how="left")
    data = data.assign(panel=data["quantity"].map(QUANTITIES.index))[["cell", "panel", "step", "mean", "lo", "hi"]]
    ids = {key: cell for cell, key in enumerate(keys.itertuples(index=False, name=None))}
    first = [ids[key] for key in ((c["optimizer"], c["batch"], c["momentum"], c["lr"], "") for c in start)
             if key in ids][:EXPLORER_SLOTS]
    # cell A shows a cell from the start; B and C may show none (-1)
    values = first + [0 if not first else -1] + [-1] * EXPLORER_SLOTS
    slots = [alt.param(name=f"cell{slot}", value=values[slot],
                       bind=alt.binding_select(options=([] if slot == 0 else [-1]) + list(range(len(labels))),
                                               labels=([] if slot == 0 else ["none"]) + labels,
                                               name=f"cell {'ABC'[slot]} "))
             for slot in range(EXPLORER_SLOTS)]
    match = None
    for slot in slots:
        test = alt.datum.cell == slot
        match = test if match is None else match | test
    picked = alt.selection_point(name="picked", fields=["cell"], empty=False, on="click", clear="dblclick")
    heat = _heat_map(cells, keys).add_params(picked)
    hover = alt.selection_point(name="hover", on="pointerover", nearest=True, fields=["step"], empty=False,
                                clear="pointerout")
    base = (alt.Chart()
            .encode(x=alt.X("step:Q", title="step"),
                    color=alt.Color("name:N", title=None, legend=alt.Legend(orient="bottom", columns=1))))
    band = base.mark_area(opacity=0.2).encode(y=alt.Y("lo:Q", title=None), y2="hi:Q")
    line = base.mark_line().encode(y=alt.Y("mean:Q", title=None))
    points = base.mark_point(filled=True, size=30).encode(
        y="mean:Q", opacity=alt.condition(hover, alt.value(1.0), alt.value(0.0)),
        tooltip=["name:N", "quantity:N", "step:Q", alt.Tooltip("mean:Q", format=".4g"),
                 alt.Tooltip("lo:Q", format=".4g"), alt.Tooltip("hi:Q", format=".4g")]).add_params(hover)
    # a rule at every step, shown at the hovered one (a rule filtered to it warns while none is)
    rule = base.mark_rule(color="#888").encode(x="step:Q", opacity=alt.condition(hover, alt.value(0.5), alt.value(0.0)))
    explorer = (
        alt.layer(band, line, points, rule, width=WIDTH, height=100)
        .add_params(*slots)
        .facet(row=alt.Row("panel:O", title=None,
                           header=alt.Header(labelAngle=0, labelAlign="left",
                                             labelExpr=f"{json.dumps(QUANTITIES, ensure_ascii=False)}[datum.value]")),
               data=inline_csv(data, ["cell", "panel", "step", "mean", "lo", "hi"]))
        # filtered before the facet: a quantity no chosen cell has gets no panel
        .transform_filter({"or": [str(match), {"param": "picked", "empty": False}]})
        .transform_calculate(name=f"{json.dumps(labels, ensure_ascii=False)}[datum.cell]",
                             quantity=f"{json.dumps(QUANTITIES, ensure_ascii=False)}[datum.panel]")
        .resolve_scale(y="independent")
        .properties(title=["Curve explorer: up to three cells overlaid, and any cell clicked in the map; hover for",
                           "the values at a step; band: 95 % interval over seeds (sharpness: their range; curvature "
                           "runs only)"])
    )
    # composed as specs: Altair cannot yet lift the params of a faceted layer inside a concatenation
    # (the menus' variables at the top, where Vega-Lite looks for them)
    views = [heat.to_dict(), explorer.to_dict()]
    schema = views[0]["$schema"]
    for view in views:
        view.pop("$schema"), view.pop("config", None)
    return {"$schema": schema, "params": views[1].pop("params"), "vconcat": views,
            "resolve": {"scale": {"color": "independent"}}}


def _heat_map(cells: pd.DataFrame, keys: pd.DataFrame) -> alt.FacetChart:
    """The grid's cells as a map: median final val loss per lr (x) and momentum (y), a panel per
    regime and optimizer; each cell carries the explorer's code for it (keys' row number)."""
    grid = keys[keys["kind"] == ""].reset_index().rename(columns={"index": "cell"})
    whole = cells[cells["budget"] == 1.0]
    # every cell of the grid; one without curves (every seed diverged) has no code: a click adds nothing
    data = whole[["batch", "optimizer", "lr", "momentum", "median_final_val_loss", "n_diverged", "n_runs"]].merge(
        grid, on=["batch", "optimizer", "lr", "momentum"], how="left")
    data = data.assign(cell=data["cell"].fillna(-1).astype(int))
    data = data.assign(
        loss=data["median_final_val_loss"].where(np.isfinite(data["median_final_val_loss"])),
        regime=data["batch"].map(batch_regime.label), optimizer=data["optimizer"].map(lambda n: OPTIMIZERS[n].label),
        momentum=data["momentum"].map(lambda m: f"{m:g}"), lr=data["lr"].map(lambda lr: f"{lr:g}"),
        order=data["lr"])[["cell", "regime", "optimizer", "momentum", "lr", "order", "loss", "n_diverged", "n_runs"]]
    return (
        alt.Chart(width=alt.Step(9), height=alt.Step(10))
        .mark_rect(stroke="white", strokeWidth=0.5, invalid=None)  # a diverged cell (no loss) is drawn grey
        .encode(x=alt.X("lr:O", sort=alt.EncodingSortField("order"), title="learning rate", axis=alt.Axis(labelFontSize=8)),
                y=alt.Y("momentum:O", title="m / β₁", sort="descending"),
                color=alt.condition("isValid(datum.loss)",
                                    alt.Color("loss:Q", scale=alt.Scale(type="log", scheme="viridis"),
                                              title=["median final", "val loss"],
                                              legend=alt.Legend(orient="right", gradientLength=80)),
                                    alt.value("#bbb")),
                tooltip=["optimizer:N", "regime:N", "momentum:N", "lr:N", alt.Tooltip("loss:Q", format=".4g"),
                         alt.Tooltip("n_diverged:Q", title="diverged seeds"), "n_runs:Q"])
        .facet(row=alt.Row("regime:N", title=None), column=alt.Column("optimizer:N", title=None),
               data=inline_csv(data, ["cell", "order", "loss", "n_diverged", "n_runs"]))
        .resolve_scale(x="independent", y="independent")
        .properties(title="Every cell of the grid, whole runs (grey: half the seeds or more diverged); click one to "
                          "add its curves below")
    )


def embed(charts: dict[str, alt.Chart | dict], bundle: bool = True) -> str:
    """The charts as one HTML fragment: a div and a vegaEmbed call per chart, preceded by the
    vega-embed bundle unless an earlier fragment of the page brought it (bundle=False)."""
    import vl_convert

    with alt.data_transformers.enable("default", max_rows=None):  # the data is thinned above, not capped
        # "</" escaped: no string in the data can close the script element early
        specs = {name: json.dumps(chart if isinstance(chart, dict) else chart.to_dict()).replace("</", "<\\/")
                 for name, chart in charts.items()}
    calls = "\n".join(
        f"vegaEmbed('#chart-{name}', {spec}, {{actions: false, renderer: 'svg'}}).catch(console.error);" for name, spec in specs.items())
    divs = "\n".join(f'<div id="chart-{name}" class="interactive-chart"></div>' for name in charts)
    library = ""
    if bundle:
        code = vl_convert.javascript_bundle().replace("</script", "<\\/script")
        library = f'<script type="text/javascript">\n{code}\n</script>\n'
    return f'{divs}\n{library}<script type="text/javascript">\n{calls}\n</script>'
