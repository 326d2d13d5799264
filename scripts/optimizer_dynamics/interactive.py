"""The report's interactive figures: Vega-Lite charts built with Altair from the aggregate
tables, for the HTML page only (the PDF keeps the static figures).

    lr_sensitivity_chart(cells): median validation loss against lr per optimizer, with selectors
        for the regime, the metric (final or selected val loss) and the budget; clicking a momentum
        in the legend picks it out.
    curve_explorer_chart(curves, curvature): one cell's curves against step (val loss, effective
        step, update cosine, and the sharpness where a curvature run measured it), chosen by
        optimizer, momentum, lr and regime; the band is the 95 % interval over seeds (the seeds'
        range for the sharpness); hovering shows the values.
    embed(charts): the charts as HTML: one vega-embed bundle (vl-convert's, so nothing is fetched
        from a CDN) and the data inline.

The curves are thinned to log-spaced steps (CURVE_POINTS per curve), so the page stays small.
"""

from __future__ import annotations

import json

import altair as alt
import numpy as np
import pandas as pd

from optimizer_dynamics import batch_regime
from optimizer_dynamics.tables import LOSS_METRICS

CURVE_POINTS = 30  # steps kept per curve, log-spaced
# The curves shown, in panel order, by short labels (the CSV repeats them on every row).
CURVE_METRICS = {"val.loss": "1 val loss", "eff_step.global": "2 ‖update‖/‖grad‖", "update.cosine": "3 update cosine"}
SHARPNESS = "4 sharpness"
WIDTH = 560  # px: the text column of report/style.css


def inline_csv(frame: pd.DataFrame, numbers: list[str]) -> alt.Data:
    """The rows as CSV text inside the spec, numbers at 4 significant digits: a third of the size
    of Vega-Lite's JSON rows."""
    text = frame.to_csv(index=False, float_format="%.4g")
    return alt.Data(values=text, format=alt.DataFormat(type="csv", parse={name: "number" for name in numbers}))


def _select(name: str, options: list, label: str, value=None, labels: list | None = None) -> alt.Parameter:
    """A dropdown selector named `label`, at `value` (default: the first option)."""
    return alt.param(name=name, value=options[0] if value is None else value,
                     bind=alt.binding_select(options=options, name=f"{label} ", **({"labels": labels} if labels else {})))


def lr_sensitivity_chart(cells: pd.DataFrame) -> alt.Chart:
    """cells.parquet (every budget): one line per (optimizer, momentum) and a point per lr."""
    rows = []
    for metric, (_, median, _) in LOSS_METRICS.items():
        rows.append(cells.assign(metric=f"{metric} val loss", loss=cells[median]))
    data = pd.concat(rows, ignore_index=True)
    data = data[np.isfinite(data["loss"])]  # +inf: half the seeds or more diverged, drawn as a gap
    data = data.assign(regime=data["batch"].map(batch_regime.label), budget=(100 * data["budget"]).round().astype(int),
                       momentum=data["momentum"].map(lambda m: f"{m:g}"))
    data = data[["regime", "metric", "budget", "optimizer", "momentum", "lr", "loss", "n_diverged", "n_runs"]]
    options = {name: data[name].unique() for name in ("regime", "metric", "budget")}
    regime = _select("regime", sorted(options["regime"], key=lambda r: r != "full batch"), "regime")
    metric = _select("metric", sorted(options["metric"], key=lambda m: not m.startswith("final")), "metric")
    budget = _select("budget", sorted(options["budget"].tolist(), reverse=True), "budget (% of the steps)")
    momentum = alt.selection_point(name="momentum", fields=["momentum"], bind="legend")
    return (
        alt.Chart(inline_csv(data, ["budget", "lr", "loss", "n_diverged", "n_runs"]), width=WIDTH // 2 - 40,
                  height=260)
        .mark_line(point=True)
        .encode(
            x=alt.X("lr:Q", scale=alt.Scale(type="log"), title="learning rate"),
            y=alt.Y("loss:Q", scale=alt.Scale(type="log"), title="median validation loss over seeds"),
            color=alt.Color("momentum:N", title="momentum / β1"),
            opacity=alt.condition(momentum, alt.value(1.0), alt.value(0.15)),
            tooltip=["optimizer:N", "momentum:N", "lr:Q", alt.Tooltip("loss:Q", format=".4g"), "n_diverged:Q",
                     "n_runs:Q"],
        )
        .add_params(regime, metric, budget, momentum)
        .transform_filter((alt.datum.regime == regime) & (alt.datum.metric == metric) & (alt.datum.budget == budget))
        .facet(column=alt.Column("optimizer:N", title=None))
        .resolve_scale(x="independent")
        .properties(title="lr sensitivity: choose the regime, the metric and the budget; click a momentum")
    )


def log_spaced_steps(steps: np.ndarray, points: int = CURVE_POINTS) -> np.ndarray:
    """About `points` of the given steps, log-spaced (the early steps move fastest), the last kept."""
    steps = np.unique(steps)
    if len(steps) <= points:
        return steps
    wanted = np.unique(np.geomspace(1, len(steps), points).astype(int) - 1)
    return steps[wanted]


def curve_explorer_chart(curves: pd.DataFrame, curvature: pd.DataFrame, start: dict) -> alt.Chart:
    """curves.parquet and curvature.parquet: a cell's curves, one panel per quantity; `start`
    is the cell shown first ({optimizer, lr, momentum, batch})."""
    chosen = curves[curves["metric"].isin(CURVE_METRICS)]
    keep = log_spaced_steps(chosen["step"].to_numpy())
    chosen = chosen[chosen["step"].isin(keep)].assign(quantity=lambda f: f["metric"].map(CURVE_METRICS))
    sharp = curvature.groupby(["batch", "optimizer", "lr", "momentum", "step"], as_index=False)["sharpness"].agg(
        mean="mean", lo="min", hi="max")
    sharp = sharp[sharp["step"].isin(log_spaced_steps(sharp["step"].to_numpy(), 2 * CURVE_POINTS))]
    data = pd.concat([chosen, sharp.assign(quantity=SHARPNESS)], ignore_index=True)
    data = data.assign(momentum=data["momentum"].map(lambda m: f"{m:g}"), lr=data["lr"].map(lambda lr: f"{lr:g}"))
    data = data[["batch", "optimizer", "momentum", "lr", "quantity", "step", "mean", "lo", "hi"]]
    start = {"optimizer": start["optimizer"], "momentum": f"{start['momentum']:g}", "lr": f"{start['lr']:g}",
             "batch": start["batch"]}
    params = {}
    for name, label in (("optimizer", "optimizer"), ("momentum", "momentum / β1"), ("lr", "lr"), ("batch", "regime")):
        options = sorted(data[name].unique(), key=_order)
        labels = [batch_regime.label(o) for o in options] if name == "batch" else None
        params[name] = _select(name, options, label, start[name], labels)
    match = None
    for name, param in params.items():
        test = alt.datum[name] == param
        match = test if match is None else match & test
    base = alt.Chart(inline_csv(data, ["step", "mean", "lo", "hi"])).transform_filter(match).encode(
        x=alt.X("step:Q", title="step"))
    band = base.mark_area(opacity=0.25).encode(y=alt.Y("lo:Q", title=None), y2="hi:Q")
    line = base.mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        y=alt.Y("mean:Q", title=None),
        tooltip=["quantity:N", "step:Q", alt.Tooltip("mean:Q", format=".4g"), alt.Tooltip("lo:Q", format=".4g"),
                 alt.Tooltip("hi:Q", format=".4g")])
    return (
        alt.layer(band, line, width=WIDTH - 140, height=120)
        .add_params(*params.values())
        .facet(row=alt.Row("quantity:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")))
        .resolve_scale(y="independent")
        .properties(title="Curve explorer: choose a cell; band: 95 % interval over seeds (sharpness: their range, "
                          "full-batch curvature runs only)")
    )


def _order(value):
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def embed(charts: dict[str, alt.Chart], bundle: bool = True) -> str:
    """The charts as one HTML fragment: a div and a vegaEmbed call per chart, preceded by the
    vega-embed bundle unless an earlier fragment of the page brought it (bundle=False)."""
    import vl_convert

    with alt.data_transformers.enable("default", max_rows=None):  # the data is thinned above, not capped
        # "</" escaped: no string in the data can close the script element early
        specs = {name: json.dumps(chart.to_dict()).replace("</", "<\\/") for name, chart in charts.items()}
    calls = "\n".join(
        f"vegaEmbed('#chart-{name}', {spec}, {{actions: false, renderer: 'svg'}}).catch(console.error);" for name, spec in specs.items())
    divs = "\n".join(f'<div id="chart-{name}" class="interactive-chart"></div>' for name in charts)
    library = ""
    if bundle:
        code = vl_convert.javascript_bundle().replace("</script", "<\\/script")
        library = f'<script type="text/javascript">\n{code}\n</script>\n'
    return f'{divs}\n{library}<script type="text/javascript">\n{calls}\n</script>'
