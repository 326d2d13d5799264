# %% [markdown]
# ---
# title: "Optimizer dynamics: SGD, momentum and Adam, measured from logs"
# subtitle: "The seed project's claims about a small MLP on make_moons, tested run by run"
# format:
#   html:
#     toc: true
#     toc-depth: 2
#     css: style.css
#     embed-resources: true
#     code-fold: true
#   typst:
#     toc: true
# execute:
#   echo: false
#   warning: false
# jupyter: python3
# ---

# %% tags=["parameters"]
# Injected by papermill (or `quarto render -P`): where the aggregate tables and figures are.
aggregate_dir = "results/aggregate"
figures_dir = "results/figures"

# %%
import html
import json
import math
import re
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display
from PIL import Image

from optimizer_dynamics.config import format_number
from optimizer_dynamics import interactive, tables
from optimizer_dynamics.figures import FIGURES
from optimizer_dynamics.figures.render import DPI
from optimizer_dynamics import batch_regime
from optimizer_dynamics import study as study_layout
from optimizer_dynamics.optimizers import OPTIMIZERS
from optimizer_dynamics.claims import FAMILIES, conditioning, experiment3, gradient_noise, ladder, stability
from optimizer_dynamics.claims.base import VERDICT_WORDS, VERDICTS, spoken_list

figures = Path(figures_dir)
agg = tables.load_aggregate(aggregate_dir)  # the one reader of the aggregate tables
study, config, verdicts = agg.study, agg.config, agg.verdicts
analysis, training, data = config["analysis"], config["training"], config["data"]
all_runs = pd.concat([agg.runs, tables.select(agg.side_runs_by_budget, budget=1.0)])  # whole runs, every set
regimes = study_layout.regimes(config)
# The sections on the seed's experiments describe one regime in their tables and sentences: the
# seed's own, minibatch SGD, where the grid has one (else full batch); its figures come first,
# the other regimes' are one click away (HTML) or follow (PDF), and the verdicts cover them all.
shown_regime = next((r for r in regimes if r != "full"), regimes[0])
shown_label = batch_regime.label(shown_regime)
shown = agg.in_regime(shown_regime)
runs, cells = shown.runs, shown.cells
cell = shown.cell
reference = {name: (float(ref["lr"]), float(ref["momentum"])) for name, ref in analysis["reference"].items()}

# Markdown syntax a data string could trigger (emphasis, links, spans, tables, math, citations);
# html.escape then takes care of <, >, & and quotes, so no config or data text becomes markup.
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_{}\[\]()#|$~^@])")


def esc(value) -> str:
    """Any value from the config or the data, made inert for markdown and HTML."""
    text = " ".join(str(value).split())
    return html.escape(_MARKDOWN_ACTIVE.sub(r"\\\1", text))


def lr_text(value) -> str:
    return esc(format_number(value))


def num(value, digits: int = 3) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}g}"


def percent(fraction) -> str:
    return f"{fraction * 100:.6g} %"


def interval(row: pd.Series, column: str) -> str:
    """mean [lo, hi]: the 95 % interval over the seeds that finished (see the aggregation)."""
    mean, lo, hi = row[f"{column}_mean"], row[f"{column}_lo"], row[f"{column}_hi"]
    if pd.isna(lo):
        return num(mean)
    return f"{num(mean)} [{num(lo)}, {num(hi)}]"


def verdict_badge(word: str) -> str:
    if word in VERDICTS:  # the class name comes from this fixed set, never from data
        return f"[{esc(word)}]{{.verdict .verdict-{word.replace(' ', '-')}}}"
    return esc(word)


def table(frame: pd.DataFrame, caption: str) -> str:
    """A pipe table; cells are already formatted strings, so tabulate must not re-parse numbers."""
    return f"{frame.to_markdown(index=False, disable_numparse=True)}\n\n: {caption}"


# Every figure at one scale: COLUMN_INCHES of figure fill the text column, so a figure's text is the
# same size in every figure, and a one-panel figure takes half the column, not all of it.
COLUMN_INCHES = 12


def image(stem: str, caption: str, anchor: str | None = None) -> str:
    path = figures / f"{stem}.png"
    if not path.is_file():
        raise FileNotFoundError(f"figure {path} is missing: run optimizer_dynamics.figures first")
    with Image.open(path) as png:
        inches = png.size[0] / DPI
    attributes = " ".join(filter(None, [anchor and f"#{anchor}",
                                        f"width={min(100, round(100 * inches / COLUMN_INCHES))}%"]))
    return f"![{caption}](<{path.resolve().as_posix()}>){{{attributes}}}"


placed: dict[str, int] = {}  # the figures the sections have shown, and their numbers, in the page's order


def figure_anchor(name: str) -> str:
    return f"fig-{name.replace('_', '-')}"


def figure(name: str, folded: bool = False) -> str:
    """A figure of the whole study; or a grid figure in the regime the section describes, with the
    other regimes' folded below it (HTML; the PDF shows them all, as pandoc drops the raw HTML);
    numbered in the order the page shows them, with the caption its entry states. A folded figure (a
    section's second view of its claims) opens on a click, its number and title on the fold."""
    number = placed.setdefault(name, len(placed) + 1)
    caption = f"Figure {number}. {FIGURES[name].caption}"
    if not FIGURES[name].per_regime:
        shown_figure = image(name, caption, figure_anchor(name))
    else:
        def in_regime(regime: str, anchor: str | None = None) -> str:
            return image(f"{name}_{regime}", f"{caption} ({batch_regime.label(regime)})", anchor)
        others = [r for r in regimes if r != shown_regime]
        labels = " and ".join(batch_regime.label(r) for r in others)
        shown_figure = "\n\n".join([in_regime(shown_regime, figure_anchor(name))]
                                     + ([fold(f"The same figure for {labels}", *map(in_regime, others))] if others else []))
    if not folded:
        return shown_figure
    return fold(f"Figure {number}: {FIGURES[name].caption.split('. ')[0].rstrip('.')}", shown_figure)


def figure_links(names) -> str:
    """Links to the figures among `names` that the page shows, by number: "Figures 3 and 4"."""
    shown = sorted((placed[name], name) for name in names if name in placed)
    if not shown:
        return ""
    links = [f"[{number}](#{figure_anchor(name)})" for number, name in shown]
    return f"Figure{'s' if len(links) > 1 else ''} {spoken_list(links)}"


def fold(summary: str, *blocks: str) -> str:
    """Detail a reader opens on a click (HTML); the PDF, which drops the raw HTML, shows it in place."""
    return "\n\n".join([f"<details><summary>{esc(summary)}</summary>", *blocks, "</details>"])


def show(*blocks: str) -> None:
    display(Markdown("\n\n".join(blocks)))


def verdict_list(family) -> str:
    """A family's claims as links to their rows in the verdict table, where each is worded once."""
    ids = verdicts.loc[verdicts["family"] == family.name, "id"].unique()
    return ("This section's claims in the verdict table: "
            + ", ".join(f"[{esc(claim_id)}](#{claim_anchor(claim_id)})" for claim_id in ids) + ".")


def setting(optimizer: str, lr: float, momentum: float) -> str:
    return f"{esc(OPTIMIZERS[optimizer].label)} (lr {lr_text(lr)}, {OPTIMIZERS[optimizer].momentum_symbol} {lr_text(momentum)})"


hidden = sorted(all_runs["hidden"].unique())
if len(hidden) != 1:
    raise ValueError(f"runs.parquet mixes hidden sizes {hidden}: the report describes one model")
if len(all_runs) != study["n_runs"] or int(all_runs.diverged.sum()) != study["n_diverged"]:
    raise ValueError("runs.parquet and study.json disagree on the run counts: re-run the aggregation")

# %%
# (≈, not =, for a tie: typst reads a table cell starting with "= " as a heading, which the PDF's
# table of contents then lists)
VERDICT_MARKS = {"supported": "✓", "mixed": "◐", "refuted": "✗", "no difference": "≈", "not reached": "…",
                 "inconclusive": "?"}


def claim_anchor(claim_id: str) -> str:
    """The id of a claim's row in the verdict table: what a key finding links to."""
    return f"claim-{re.sub(r'[^A-Za-z0-9]', '-', claim_id)}"


def setting_anchor(claim_id: str, position: int) -> str:
    """The id of a claim's setting in the appendix's table: what its badge links to."""
    return f"{claim_anchor(claim_id)}-{position + 1}"


def setting_badges(rows: pd.DataFrame) -> str:
    """A claim's verdicts, one coloured mark per setting, grouped by regime, metric and comparison
    ("b64 final usual ≈ ≈ ✓": the budgets in increasing order); a mark names its setting and verdict
    on hover and links to its measurements in the appendix."""
    groups: list[tuple[str, list[str]]] = []
    for position, row in enumerate(rows.itertuples()):
        regime = batch_regime.badge(row.regime)
        comparison = row.comparison.split()[0] if isinstance(row.comparison, str) else ""  # "usual", "tuned"
        metric = row.metric if isinstance(row.metric, str) else ""  # no metric axis: null
        label = " ".join(part for part in (regime, metric, comparison) if part)
        title = html.escape(f"{row.setting}: {row.verdict}", quote=True)
        # the mark carries the verdict without colour (PDF, colour-blind readers)
        mark = (f"[{VERDICT_MARKS[row.verdict]}](#{setting_anchor(row.id, position)})"
                f"{{.verdict .verdict-{row.verdict.replace(' ', '-')} title=\"{title}\"}}")
        if not groups or groups[-1][0] != label:
            groups.append((label, []))
        groups[-1][1].append(mark)
    return " ".join(f"[{esc(label)} {' '.join(marks)}]{{.setting-group}}" for label, marks in groups)


family_figures = {family.name: family.figures for family in FAMILIES}


def claim_details(claim_id: str, rows: pd.DataFrame) -> str:
    """A claim's source, prediction and headline, and its measurements setting by setting,
    folded away (HTML) or in full (PDF)."""
    first = rows.iloc[0]
    measured = pd.DataFrame(
        {
            "Setting": [f"[{esc(setting)}]{{#{setting_anchor(claim_id, position)}}}"
                        for position, setting in enumerate(rows["setting"])],
            "Verdict": rows["verdict"].map(verdict_badge),
            "Key number": rows["key"].map(esc),
            "Measured": rows["measured"].map(esc),
            "Why": rows["detail"].map(esc),
        }
    )
    return "\n\n".join([
        f"<details class=\"measurements\"><summary>{esc(claim_id)}: {esc(first['claim'])}, setting by setting</summary>",
        f"*Source*: {esc(first['source'])}. *Prediction*: {esc(first['prediction'])}. "
        f"*Where it holds*: {esc(first['headline'])}."
        + (f" *Shown in*: {shown}." if (shown := figure_links(family_figures.get(first["family"], ()))) else ""),
        table(measured, f"Claim {esc(claim_id)}: what each setting measured ({esc(first['test'])})."),
        "</details>",
    ])


def evidence(claim_ids: list[str]) -> str:
    """A link to the claim's row in the verdict table; to the table, for a finding about many claims."""
    if len(claim_ids) == 1:
        return f"[claim {esc(claim_ids[0])}](#{claim_anchor(claim_ids[0])})"
    return "[the verdict table](#verdicts)"


show(
    "## Key findings",
    "What the study found, from the verdicts below, each finding with its evidence:",
    "\n".join(f"{number}. {esc(finding['text'])} *Evidence: {evidence(finding['claims'])}.*"
              for number, finding in enumerate(agg.key_findings, start=1)),
)

claims = verdicts.drop_duplicates("id")
summary_table = pd.DataFrame(
    {
        "#": [f"[{esc(claim_id)}]{{#{claim_anchor(claim_id)}}}" for claim_id in claims["id"]],
        "Claim": [f"{esc(c.claim)} *({esc(c.source)})*" for c in claims.itertuples()],
        "Key number": claims["lead"].map(esc),
        "Each setting": [setting_badges(group) for _, group in verdicts.groupby("id", sort=False)],
    }
)
legend = ", ".join(f"{VERDICT_MARKS[v]} {VERDICT_WORDS[v]}" for v in VERDICTS)
show(
    "## Verdicts",
    table(summary_table, f"Each claim, who makes it, its key number (where it was measured) and its verdict in each "
          f"setting: {legend}; a mark per budget ({', '.join(percent(b) for b in sorted(analysis['budgets']))} of the "
          "steps, left to right), grouped by regime ("
          + "; ".join(f"{esc(batch_regime.badge(r))}: {esc(batch_regime.label(r))}" for r in regimes)
          + "), metric and comparison. Hover a mark for its setting; click it for its measurements."),
    fold("How to read the marks, and the terms the claims use",
         "A claim about loss is judged on the final validation loss and on the *selected* one (at the step picked on "
         "the other half of the validation set); a comparison of the optimizers at the *usual* learning rates (the "
         "seed's) and at the *tuned* ones (each optimizer's best). ◐ mixed: the claim holds in some units of the "
         "setting and not in others (the counts are in the appendix); ≈ no difference: the effect lies within the "
         "tie band. At a constant learning rate a shorter run is the prefix of a longer one, so every budget is read "
         "from the same runs. The curvature claims (7a-7d) use the curvature runs, full batch; 8a, about sampling "
         "noise, is judged at minibatch only, and 8d compares the regimes (its marks name one budget each). The "
         "measurements behind each mark are in [the appendix](#appendix-the-measurements-behind-each-verdict). "
         "The terms the claims use, and where each is measured:",
         "- *Effective step*: ‖update‖ / ‖gradient‖ over all weights, the learning rate for plain SGD "
         "([Norms and the effective step](#norms-and-the-effective-step)). *Late*: the last "
         f"{percent(analysis['late_fraction'])} of a run's steps.\n"
         "- *Good window*: the learning rates within "
         f"{percent(analysis['good_window_tolerance'])} of the best median final validation loss, around the best one "
         "([Experiment 2](#experiment-2-learning-rate-sweep)).\n"
         "- *Spread*: the 90th percentile over coordinates of |update_i| / |grad_i| over its median "
         "([Adaptivity](#adaptivity)).\n"
         "- *Sharpness* λmax(H), *preconditioned sharpness* λmax(P⁻¹H), the stability threshold 2(1 + m)/lr, the "
         "*edge of stability*, the step-0 sharpness λ₀ and the *catapult*; the *batch sharpness* "
         "([Curvature](#curvature-and-the-edge-of-stability)).\n"
         "- *B_simple*, the gradient noise scale; the *norm test*; *α*, where a step lands on the local quadratic "
         "([Gradient noise](#gradient-noise)).\n"
         "- *κ*: the factor one input is stretched by; *block heterogeneity*: how unequal the Hessian's blocks are "
         "([per-coordinate scaling](#why-adam-differs-what-per-coordinate-scaling-fixes))."),
)


# %% [markdown]
# ## The question and the set-up
#
# How do plain SGD, SGD with momentum and Adam move the weights of a small network, and does what
# they do match the seed project's conclusions? Those conclusions are treated here as hypotheses:
# every number below is computed from the per-step logs of the runs counted at the end, and each
# claim gets its verdict from a stated prediction, measurement and threshold (in its fold of the appendix).

# %%
batch = " and, separately, ".join(
    "the full training set" if size is None else f"minibatches of {esc(size)}" for size in training["batch_size"])
grid = pd.DataFrame(
    [
        {
            "Optimizer": esc(OPTIMIZERS[name].label),
            "Learning rates": ", ".join(lr_text(lr) for lr in axes["lr"]),
            "Momentum axis": f"{esc(OPTIMIZERS[name].momentum_label)}: "
            + ", ".join(lr_text(m) for m in axes["momentum"]),
            "Settings × seeds": f"{len(axes['lr']) * len(axes['momentum'])} × {len(config['seeds'])}",
        }
        for name, axes in config["optimizers"].items()
    ]
)
optimizers_text = (
    "- **Optimizers**: "
    + "; ".join(f"{esc(OPTIMIZERS[name].label)} ({esc(OPTIMIZERS[name].description)})" for name in config["optimizers"])
    + "".join(f"; {esc(OPTIMIZERS[name].label)}'s {esc(' or '.join(OPTIMIZERS[name].hyperparameter_label(text) for text in settings))}"
              for name, settings in agg.runs.groupby("optimizer", sort=False)["hyperparameters"].unique().items()
              if name in config["optimizers"] and OPTIMIZERS[name].hyperparameters) + "."
)
measures_text = (
    f"- **Measures**: the *final validation loss* is the validation loss after the last step; *late* "
    f"means the last {percent(analysis['late_fraction'])} of a run's completed steps; *steps to target* "
    f"counts the updates until the validation loss first reaches {esc(analysis['target_val_loss'])} or less. "
    "The *effective step* is ‖update‖ / ‖gradient‖ over all weights, the learning rate for plain SGD. "
    "Intervals are 95 % Student-t intervals of the mean over the seeds that did not diverge."
)
show(
    f"- **Data**: `make_moons` with {esc(data['n_train'])} training and {esc(data['n_val'])} validation points, "
    f"noise {esc(data['noise'])}, data seed {esc(data['seed'])}; inputs standardized with training-set statistics.",
    f"- **Model**: MLP 2 → {esc(hidden[0])} → 1 with ReLU and He initialization, float64, "
    "binary cross-entropy on the logit.",
    f"- **Training**: {esc(training['steps'])} steps, each on the {batch}; training and validation loss are "
    f"evaluated every {esc(training['eval_every'])} steps. A run *diverges* when its loss is non-finite or "
    f"exceeds {esc(training['divergence_factor'])} × its initial loss; it stops there and stays in every count.",
    f"- **Runs**: every setting of the grid in each regime, once per seed ({esc(', '.join(map(str, config['seeds'])))}); "
    f"with the curvature, conditioning and batch-size runs, {esc(len(all_runs))} runs in all. The tables and "
    f"sentences of the experiment sections are for **{esc(shown_label)}**, and so is each figure; the same figure "
    "for the other regimes is folded below it.",
    fold("The optimizers, their grid and the measures", optimizers_text, measures_text,
         table(grid, "The grid: every learning rate of an optimizer is trained with each of its momenta.")),
)


# %%
def reference_row(name: str) -> dict:
    lr, momentum = reference[name]
    c = cell(name, lr, momentum)
    return {
        "Setting": setting(name, lr, momentum),
        "Diverged": f"{esc(c.n_diverged)} of {esc(c.n_runs)}",
        "Final val loss: median [q25, q75]": f"{num(c.median_final_val_loss)} "
        f"[{num(c.q25_final_val_loss)}, {num(c.q75_final_val_loss)}]",
        "Final val accuracy: median": num(c.median_final_val_acc),
        "Steps to target: median": num(c.median_steps_to_target),
        "Reached target": f"{esc(c.n_reached_target)} of {esc(c.n_runs)}",
    }


def claim_text(claim_id: str, column: str, **setting) -> str:
    """A claim's key number (column "key") or measurements ("measured") in one setting (an axis the
    claim is not judged over is null)."""
    rows = verdicts[verdicts["id"] == claim_id]
    for axis, value in setting.items():
        rows = rows[rows[axis].isna() | (rows[axis] == value)]
    return esc(rows[column].iloc[0]) if len(rows) else "not judged"


usual = {"regime": shown_regime, "budget": 1.0, "comparison": "usual lrs", "metric": "final"}
show(
    "## Experiment 1: SGD vs Adam at their usual learning rates",
    "The seed compares " + " with ".join(setting(name, lr, momentum) for name, (lr, momentum) in reference.items()) + ".",
    fold("The reference pair's losses, accuracies and steps to target",
         table(pd.DataFrame([reference_row(name) for name in reference]),
               "The reference pair. A diverged run counts as infinite loss and as never reaching the target; "
               "∞ in a median means at least half the seeds did.")),
    f"At these settings, seed by seed (claims 1b and 1a): {claim_text('1b', 'key', **usual)}; {claim_text('1a', 'key', **usual)}. "
    "One learning rate each decides little; Experiment 2 compares each optimizer at its best.",
    figure("loss_curves"),
)

# %%
tolerance = analysis["good_window_tolerance"]


def window_row(window) -> dict:
    """One good window of the claims stage's windows table (the verdicts' own windows)."""
    claimed = analysis["claimed_windows"].get(window.optimizer)
    row = {"Optimizer": esc(OPTIMIZERS[window.optimizer].label),
           "Momentum": f"{OPTIMIZERS[window.optimizer].momentum_symbol} {lr_text(window.momentum)}",
           "Claimed window": f"{lr_text(claimed[0])} to {lr_text(claimed[1])}" if claimed else "none"}
    if window.missing:
        return {**row, "Best lr": "n/a", "Good window": f"none: {esc(window.missing)}"}
    edges = [side for side, hit in (("lowest", window.at_lowest_lr), ("highest", window.at_highest_lr)) if hit]
    return {
        **row,
        "Best lr": lr_text(window.best_lr),
        "Its median final val loss": num(window.best_median_loss),
        "Good window": f"{lr_text(window.lo)} to {lr_text(window.hi)}"
        + (f" (reaches the {' and '.join(edges)} grid lr)" if edges else ""),
        "Decades": num(window.decades, 2),
        "Good lrs outside it": ", ".join(lr_text(lr) for lr in window.good_outside) or "none",
    }


shown_windows = tables.select(agg.windows, batch=shown_regime, budget=1.0).query("metric == 'final'")
window_table = pd.DataFrame([window_row(w) for w in shown_windows.itertuples()]).fillna("")
window_table = window_table[[c for c in ["Optimizer", "Momentum", "Best lr", "Its median final val loss",
                                         "Good window", "Decades", "Good lrs outside it", "Claimed window"]
                             if c in window_table]]
show(
    "## Experiment 2: learning-rate sweep",
    "Each optimizer and momentum at every learning rate of the grid; the *good window* is the range of learning "
    f"rates within {percent(tolerance)} of the best final validation loss.",
    fold("How the good window is measured",
         "For each optimizer and momentum, take at every learning rate the median over seeds of the final "
         "validation loss, a diverged run counting as +∞ (so a learning rate where at least half the seeds diverge "
         f"is never good). A learning rate is *good* when its median is at most (1 + {esc(tolerance)}) × the lowest "
         "finite median among the learning rates of that optimizer and momentum. The *good window* is the unbroken "
         "run of good grid learning rates around the best one, and its width is log₁₀(largest / smallest) decades: "
         "measured at the grid's resolution, and possibly wider when it reaches the end of the grid."),
    fold("The good windows per optimizer and momentum, beside the claimed ones",
         table(window_table, "Good learning-rate windows per optimizer and momentum, beside the seed's "
               "claimed windows (the verdicts on claims 3 and 4 use the reference momentum's row).")),
    figure("lr_sensitivity"),
    fold("Explore: the same sweep at every budget and regime",
         interactive.embed({"lr-sensitivity": interactive.lr_sensitivity_chart(
             agg.cells_by_budget, agg.windows, analysis["claimed_windows"], shown_regime)})),
)


# %%
def divergence_table(name: str) -> str:
    sub = cells[cells.optimizer == name]
    text = sub.n_diverged.astype(str) + " of " + sub.n_runs.astype(str)
    text = text.where(sub.n_diverged == 0, "**" + text + "**")  # the few non-zero counts stand out
    wide = sub.assign(text=text).pivot(index="lr", columns="momentum", values="text").sort_index()
    wide.columns = [f"{OPTIMIZERS[name].momentum_symbol} {lr_text(m)}" for m in wide.columns]
    wide.insert(0, "lr", [lr_text(lr) for lr in wide.index])
    return table(wide.fillna("not run"), f"{esc(OPTIMIZERS[name].label)}: diverged runs at each learning rate and "
                 f"{OPTIMIZERS[name].momentum_symbol}.")


divergence = study["grid_divergence"][shown_regime]
show(
    f"**Divergence.** At {esc(shown_label)}, {esc(divergence['diverged'])} of the grid's {esc(divergence['runs'])} "
    "runs diverged ("
    + ", ".join(f"{esc(diverged)} of {esc(n)} {esc(OPTIMIZERS[name].label)}"
                for name, (diverged, n) in divergence["per_optimizer"].items())
    + "); every run of the study is counted in Provenance. The tables list every setting, including those "
    "where none did; non-zero counts are in bold.",
    # A fenced div: side by side in the HTML page (style.css), one after the other elsewhere.
    fold("Diverged runs per learning rate and momentum, per optimizer", "::: {.side-by-side}",
         *(divergence_table(name) for name in config["optimizers"]), ":::"),
)

# %%
momentum_optimizer = OPTIMIZERS[experiment3.OPTIMIZER]
momentum_lr = reference[experiment3.OPTIMIZER][0]
momentum_table = pd.DataFrame([
    {
        "Momentum": f"{momentum_optimizer.momentum_symbol} {lr_text(c.momentum)}",
        "Late effective step": interval(c, "eff_step_late"),
        "Late update cosine": interval(c, "update_cosine_late"),
        "Final val loss: median": num(c.median_final_val_loss),
        "Diverged": f"{esc(c.n_diverged)} of {esc(c.n_runs)}",
    }
    for _, c in cells[(cells.optimizer == experiment3.OPTIMIZER) & (cells.lr == momentum_lr)]
    .sort_values("momentum").iterrows()
])
whole_run = {"regime": shown_regime, "budget": 1.0}
show(
    "## Experiment 3: momentum",
    f"{esc(momentum_optimizer.label)} with every momentum m of the grid. Heavy-ball momentum adds up past gradients "
    "with weights mᵏ, so under a steady gradient the step approaches lr / (1 − m); where the gradient is noise, "
    "lr / √(1 − m²). A cosine near 1 between consecutive updates means a straight, smooth path.",
    f"Measured over every lr and m: {claim_text('5c', 'measured', **whole_run)} (claims 5c, 5d).",
    fold(f"The effective step and update cosine at each momentum, at lr {lr_text(momentum_lr)}",
         table(momentum_table, f"{esc(momentum_optimizer.label)} at lr {lr_text(momentum_lr)}: the late effective "
               "step and how aligned consecutive updates are (mean [95 % interval] over seeds that finished).")),
    figure("momentum", folded=True),
    interactive.embed({"curve-explorer": interactive.curve_explorer_chart(
        agg.curves, agg.curvature,
        [{"optimizer": name, "lr": lr, "momentum": momentum, "batch": shown_regime}
         for name, (lr, momentum) in reference.items()], agg.cells_by_budget)}, bundle=False),
)

# %%
show(
    "## Norms and the effective step",
    "For plain SGD the update is lr × gradient, so ‖update‖ / ‖gradient‖ should equal lr at every step: "
    f"{claim_text('2', 'measured', **whole_run)} (claim 2). Adam's step is set by its own estimate of the "
    f"gradient's size instead: {claim_text('6a', 'key', **whole_run)} (claim 6a, at the usual learning rates).",
    figure("effective_step"),
    figure("norms", folded=True),
)

# %%
show(
    "## Logit saturation",
    "A logit counts as saturated when its sigmoid lies outside [0.01, 0.99]; the loss gradient through "
    "it is then nearly zero when the prediction is right.",
    "Late in training the saturated fraction of training points is "
    + " and ".join(f"{interval(cell(name, *reference[name]), 'saturated_frac_late')} for "
                   f"{setting(name, *reference[name])}" for name in reference) + ".",
    figure("saturation", folded=True),
)

# %%
show(
    "## Adaptivity",
    "Per coordinate, |update_i| / |grad_i| is the learning rate that weight effectively got. Plain SGD "
    "gives every weight the same one; Adam divides each by a running RMS of its own gradient, so the "
    "ratio spreads over coordinates. The spread is measured as the 90th percentile over coordinates "
    "divided by the median.",
    f"Late in training, at the reference settings and their controls (claim 6b): "
    f"{claim_text('6b', 'measured', **whole_run)}.",
    fold("Why the controls: momentum spreads the coordinates too",
         "The spread alone does not isolate adaptivity: heavy-ball momentum carries past gradients, so a "
         "coordinate whose current gradient is tiny still moves, and its ratio grows; hence heavy ball at Adam's "
         "β₁ as the control for momentum, and Adam with β₁ = 0 as adaptivity without it. A spread far above 1, "
         "such as 10¹⁰, is not a measure of adaptivity: it comes from coordinates whose gradient is nearly zero "
         "at that step while their update is not, so |update_i| / |grad_i| has a near-zero denominator; the "
         "medians over seeds are given for that reason."),
    figure("adaptivity", folded=True),
)


# %%
missing_rungs = [OPTIMIZERS[name].label for name in ladder.RUNGS if name not in config["optimizers"]]
show(
    "## Why Adam differs: the ablation ladder",
    "Adam is three ingredients on top of SGD: an average of past gradients (β₁), a step divided by an "
    "estimate of the gradient's size, and that division made per coordinate. The ladder adds them one at a "
    "time, each rung at its own best learning rate: normalized gradient descent, sign descent, then Adam.",
    fold("The rungs, and what Kunstner et al. found",
         "**Normalized gradient descent**: every step has length lr along the gradient, or along its average "
         "(normalization without per-coordinate scaling). **Sign descent**: every coordinate steps by lr along the "
         "sign of the gradient, *signSGD*, or of its average, *Signum* (normalization per coordinate, without "
         "Adam's second-moment estimate). Kunstner et al. (2023, *Noise is not the main factor behind the gap "
         "between SGD and Adam on transformers, but sign descent might be*) found sign descent with momentum close "
         "to Adam."),
    verdict_list(ladder.FAMILY),
    figure("ladder") if not missing_rungs else
    f"This study's grid lacks some of the ladder's optimizers ({esc(', '.join(missing_rungs))}), so the claims "
    "above cannot be tested.",
    fold("Claim 9e: the gap between SGD and Adam and the batch size",
         "Kunstner et al. also found the gap between SGD and Adam growing with the batch size (claim 9e): plain "
         "SGD and Adam are trained at more batch sizes for it, beside the grid's regimes.", figure("batch_gap"))
    if config["batch_sizes"]["batch_size"] else
    "This study has no batch-size runs (config batch_sizes.batch_size is empty), so claim 9e cannot be tested.",
    fold("Claim 9f: Adam with a large ε is heavy ball",
         "Adam's ε is the last ingredient (claim 9f): far above the root of the second moment, it turns Adam's "
         "per-coordinate step lr m̂/(√v̂ + ε) into lr m̂/ε, heavy ball at lr (1 − β₁)/ε. Adam runs at a large and a "
         "small ε sit on the heavy-ball learning-rate axis beside the grid's heavy ball.", figure("eps_overlay"))
    if config["epsilon"]["eps"] else
    "This study has no epsilon runs (config epsilon.eps is empty), so claim 9f cannot be tested.",
)

# %%
conditioning_problems = config["conditioning"]["problems"]
show(
    "## Why Adam differs: what per-coordinate scaling fixes",
    "The moons inputs are standardized, so a per-coordinate step has little to fix. These runs make one input "
    "badly scaled: after standardization the first input is multiplied by κ, which multiplies its curvature by "
    "about κ². Plain SGD must then shrink its learning rate; Adam's update does not change when one "
    "coordinate of the gradient is rescaled, so its learning rate should not have to. Rotating the stretched "
    "inputs keeps the curvature but spreads it over both coordinates, where a per-coordinate step cannot single "
    "it out; SGD does not see a rotation (rotating the inputs and its initial weights together rotates its "
    "whole trajectory, which the tests check to 1e-12).",
    verdict_list(conditioning.FAMILY),
    figure("conditioning")
    if conditioning_problems else
    "This study has no conditioning runs (config conditioning.problems is empty), so these claims cannot be tested.",
)

# %%
schedule = config["curvature"]
definitions = (
    f"**Sharpness** λmax(H) is the largest eigenvalue of the exact Hessian H of the full-batch training loss at "
    f"the current weights, computed in closed form in the curvature runs of the settings below, in pairs of "
    f"consecutive steps (so an oscillation of period 2 is seen at both its phases, and the late ratio averages "
    f"each pair): a pair every {esc(schedule['early_every'])} steps up to step {esc(schedule['early_steps'])}, "
    f"then every {esc(schedule['every'])} steps, for {esc(schedule['steps'])} steps of full-batch training. "
    "Gradient descent on a quadratic of curvature λ is stable "
    "only while λ < 2 / lr; heavy-ball momentum m (torch's form: v ← m v + g, weights ← weights − lr v) moves "
    "the bound to 2 (1 + m) / lr. Cohen "
    "et al. (2021, *Gradient Descent on Neural Networks Typically Occurs at the Edge of Stability*) found that "
    "full-batch gradient descent raises its sharpness to about 2 / lr and then hovers there, the *edge of "
    "stability*. For Adam, Cohen et al. (2022, *Adaptive Gradient Methods at the Edge of Stability*) use the "
    "**preconditioned sharpness** λmax(P⁻¹H) with P = (1 − β₁ᵗ) diag(√(v / (1 − β₂ᵗ)) + ε), t the number of "
    "steps taken and v Adam's second-moment estimate including step t's gradient; its bound is "
    "(2 + 2β₁) / ((1 − β₁) lr), 38 / lr at β₁ = 0.9.",
    "The **ratio** is the (preconditioned) sharpness divided by that threshold; above 1 a quadratic of that "
    f"curvature would diverge. **Late** is the last {percent(analysis['late_fraction'])} of a run's curvature "
    "steps; a setting is *at the edge* when the 95 % interval of its mean late ratio over seeds lies within "
    f"{stability.EDGE_BAND[0]:g} to {stability.EDGE_BAND[1]:g}. The **step-0 critical learning rate** 2 (1 + m) / λ₀ is where "
    "the step-0 sharpness λ₀ would meet the threshold; above it, Lewkowycz et al. (2020, *The large learning "
    "rate phase of deep learning: the catapult mechanism*) find that gradient descent survives by cutting its "
    "sharpness below 2 / lr in the first steps. The **change from mid-run** compares the mean sharpness "
    "over the late curvature steps with the mean over as many steps ending half-way through the run.",
)
verdict_lines = verdict_list(stability.FAMILY)


def plain(value) -> str:
    """num() without an exponent for the large thresholds of Adam (38000, not 3.8e+04)."""
    return f"{value:.0f}" if pd.notna(value) and 1000 <= abs(value) < 1e9 else num(value)


def curvature_row(row) -> dict:
    """One curvature setting of curvature_cells.parquet, as the table shows it."""
    adaptive = OPTIMIZERS[row.optimizer].adaptive
    return {
        "Setting": setting(row.optimizer, row.lr, row.momentum),
        "Compared": "λmax(P⁻¹H)" if adaptive else "λmax(H)",
        "Threshold": plain(row.stability_threshold),
        "At step 0": plain(row.initial_stability_sharpness),
        "Late / threshold": interval(row, "late_sharpness_ratio"),
        "λmax(H) change from mid-run": "n/a" if pd.isna(row.sharpness_late_change)
        else f"{row.sharpness_late_change:+.0%}",
        "Diverged": f"{esc(row.n_diverged)} of {esc(row.n_runs)}",
    }


minibatch_curvature = config["curvature"]["minibatch"]
if agg.curvature_cells.empty:
    show(
        "## Curvature and the edge of stability",
        *definitions,
        "This study has no curvature runs (the config's `curvature.every` is 0 or `curvature.cells` selects no "
        "setting), so the claims below cannot be tested.",
        verdict_lines,
    )
else:
    curvature_table = pd.DataFrame([curvature_row(row) for _, row in agg.curvature_cells.iterrows()])
    show(
        "## Curvature and the edge of stability",
        fold("Definitions: sharpness, its threshold, the ratio, the critical learning rate", *definitions),
        fold("The sharpness of each curvature setting, against its threshold", table(curvature_table, "Per curvature setting: the compared quantity (sharpness for SGD, preconditioned "
              "sharpness for Adam) at step 0 and late in training, means over seeds, in the units of 1 / lr, as the "
              "threshold (per squared weight for λmax(H), per weight for λmax(P⁻¹H): Adam's lr is a step length); "
              "late / threshold with its 95 % interval over the seeds that finished; the change of λmax(H) from "
              "mid-run to the end.")),
        verdict_lines,
        figure("sharpness"),
        figure("stability", folded=True),
        fold("Claim 7e: the edge of stochastic stability",
             "With minibatches the full-batch sharpness need not reach 2/lr: what SGD keeps in check is the "
             "*batch sharpness*, each minibatch loss's curvature along its own gradient, "
             "E_B[g_Bᵀ H_B g_B / |g_B|²] (Andreyev and Beneventano 2024, claim 7e), measured on runs of their own "
             f"at batch {esc(minibatch_curvature['batch_size'])}.", figure("stochastic_edge"))
        if minibatch_curvature["cells"] else
        "This study has no minibatch curvature runs (config curvature.minibatch.cells is empty), so claim 7e "
        "cannot be tested.",
    )


# %%
noise_definitions = [
    "Each run computes, every `training.noise_every` steps from step 0, the gradient of every training point's "
    "loss, g_i, in closed form, and from them the instruments Cockpit (Schneider, Dangel and Hennig, 2021, "
    "*Cockpit: A Practical Debugging Tool for the Training of Deep Neural Networks*) estimates from a minibatch, "
    "here exactly over the whole training set: G is the full-batch gradient and Σ the covariance of the g_i.",
    "- **Noise scale** B_simple = tr(Σ) / |G|² (McCandlish et al., 2018, *An Empirical Model of Large-Batch "
    "Training*): the batch size at which a minibatch gradient's expected error equals the gradient itself. A batch "
    "well below it takes steps that are mostly noise; well above it, more points buy little.\n"
    "- **Norm test** √(B_simple / B) for the batch size B in use (Byrd et al., 2012, as Cockpit computes it): "
    "above 1 the minibatch gradient's error exceeds the gradient.\n"
    "- **α** (Cockpit): fit a quadratic along the step to the full-batch loss and its slope before and after "
    "it; α = −1 means the step hardly moved on that quadratic, 0 that it landed at its minimum, 1 that it landed "
    "level on the far side (a concave fit counts as −1, as in Cockpit). Cockpit's best learning rates had a "
    "median α slightly above 0.\n"
    "- **Mean GSNR**: the mean over coordinates of G_j² / Σ_jj (Liu et al., 2020), in the run files.",
]
if training["noise_every"]:
    show(
        "## Gradient noise",
        fold("Definitions: the noise scale, the norm test, α, the GSNR", *noise_definitions),
        f"In this study the instruments are taken every {esc(training['noise_every'])} steps.",
        verdict_list(gradient_noise.FAMILY),
        figure("noise", folded=True),
    )
else:
    show(
        "## Gradient noise",
        *noise_definitions,
        "This study has no noise steps (the config's `training.noise_every` is 0), so the claims below cannot be "
        "tested.",
        verdict_list(gradient_noise.FAMILY),
    )


# %%
def flatten(value, prefix: str = ""):
    """The config as (dotted key, value) rows; a list of plain values stays on one row."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from flatten(inner, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and not any(isinstance(v, (dict, list)) for v in value):
        yield prefix, ", ".join(json.dumps(v) if isinstance(v, (bool, type(None))) else str(v) for v in value)
    else:
        yield prefix, json.dumps(value) if isinstance(value, (bool, type(None))) else str(value)


count_rows = [
    {"Optimizer": esc(OPTIMIZERS[name].label), "Runs": esc(n), "Diverged": esc(study["n_diverged_per_optimizer"][name])}
    for name, n in study["n_runs_per_optimizer"].items()
]
count_table = pd.DataFrame([*count_rows, {"Optimizer": "all", "Runs": esc(study["n_runs"]),
                                          "Diverged": esc(study["n_diverged"])}])
versions = [("training", k, v) for k, v in study["versions"].items()]
versions += [("aggregation", k, v) for k, v in study.get("aggregation_versions", {}).items()]
versions_table = pd.DataFrame([{"Stage": esc(s), "Library": esc(k), "Version": esc(v)} for s, k, v in versions])
config_table = pd.DataFrame([{"Setting": esc(k), "Value": esc(v)} for k, v in flatten(config)])
show(
    "## Provenance",
    f"{esc(study['n_runs'])} runs behind this report, {esc(study['n_diverged'])} of them diverged (and in every "
    "count above).",
    fold("Runs per optimizer, library versions and the study configuration",
         table(count_table, "Runs behind this report; diverged runs are in every count above."),
         table(versions_table, "Library versions recorded by the training runs and the aggregation."),
         table(config_table, "The study configuration, as the aggregation received it.")),
)


# %%
# A figure added as one file (optimizer_dynamics/figures/) is shown here until a section takes it
# (a figure a claim family names is its section's to show, or to leave out where the study lacks its runs).
named = {name for family in FAMILIES for name in family.figures}
unplaced = [name for name in FIGURES if name not in placed and name not in named]
if unplaced:
    show("## More figures", *map(figure, unplaced))

# %%
show(
    "## Appendix: the measurements behind each verdict",
    fold("Every claim's prediction, source and measurements, setting by setting",
         *[claim_details(claim_id, group) for claim_id, group in verdicts.groupby("id", sort=False)]),
)
