"""The exact gradient-noise instruments against values computed another way: per-sample
gradients from an autograd loop, the covariance from numpy, alpha on quadratics whose answer is
known and Cockpit's fit redone with numpy, and the training loop's columns at its noise steps."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_DATA, TINY_GRID, TINY_SEEDS, aggregate_and_judge, tiny_config, tiny_study_config
from optimizer_dynamics import noise, tables
from optimizer_dynamics.figures import render
from optimizer_dynamics.claims.base import VERDICTS
from optimizer_dynamics.model import layer_views, n_params
from optimizer_dynamics.runfile import write_run
from optimizer_dynamics.train import default_out, train

HIDDEN = 16


def nets_thetas(k: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return 0.7 * torch.randn(k, n_params(HIDDEN), dtype=torch.float64, generator=generator)


def autograd_per_sample(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor):
    """Each point's loss and gradient, one backward per point, through nn.Sequential."""
    net = torch.nn.Sequential(torch.nn.Linear(2, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 1)).double()
    net.load_state_dict({k.replace("fc1", "0").replace("fc2", "2"): v for k, v in layer_views(theta, HIDDEN).items()})
    losses, grads = [], []
    for i in range(len(x)):
        net.zero_grad()
        loss = F.binary_cross_entropy_with_logits(net(x[i : i + 1]).squeeze(-1), y[i : i + 1])
        loss.backward()
        losses.append(loss.item())
        grads.append(torch.cat([p.grad.ravel() for p in net.parameters()]))
    return torch.tensor(losses, dtype=torch.float64), torch.stack(grads)


@pytest.fixture(scope="module")
def data(tiny_dataset):
    return torch.from_numpy(tiny_dataset.x_train), torch.from_numpy(tiny_dataset.y_train)


def test_moments_equal_an_autograd_loop(data):
    """Losses, G, mean_i g_ij^2 and g_i . u against one autograd backward per point."""
    x, y = data
    thetas, direction = nets_thetas(3), nets_thetas(3, seed=9)
    direction /= direction.norm(dim=1, keepdim=True)
    got = noise.gradient_moments(thetas, direction, x, y, HIDDEN)
    for k, theta in enumerate(thetas):
        losses, grads = autograd_per_sample(theta, x, y)
        torch.testing.assert_close(got["losses"][k], losses, rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(got["mean"][k], grads.mean(0), rtol=1e-10, atol=1e-15)
        torch.testing.assert_close(got["second"][k], grads.square().mean(0), rtol=1e-10, atol=1e-15)
        torch.testing.assert_close(got["projected"][k], grads @ direction[k], rtol=1e-10, atol=1e-14)


def test_trace_noise_scale_and_gsnr_equal_numpy_over_an_autograd_loop(data):
    x, y = data
    thetas = nets_thetas(2, seed=1)
    moments = noise.gradient_moments(thetas, thetas / thetas.norm(dim=1, keepdim=True), x, y, HIDDEN)
    got = noise.gradient_noise(moments["mean"], moments["second"])
    for k, theta in enumerate(thetas):
        g = autograd_per_sample(theta, x, y)[1].numpy()
        sigma = np.cov(g, rowvar=False, bias=True)  # over the training set: the population covariance
        mean = g.mean(axis=0)
        assert got["noise.trace_cov"][k].item() == pytest.approx(np.trace(sigma), rel=1e-10)
        assert got["noise.b_simple"][k].item() == pytest.approx(np.trace(sigma) / (mean @ mean), rel=1e-10)
        noisy = np.diag(sigma) > 1e-30
        assert 0 < noisy.sum() <= g.shape[1]
        gsnr = mean[noisy] ** 2 / np.diag(sigma)[noisy]
        assert got["noise.gsnr_mean"][k].item() == pytest.approx(gsnr.mean(), rel=1e-8)


def quadratic_observations(curvature, minimum, distance, offset=0.3):
    """f(s) = curvature / 2 (s - minimum)^2 + offset observed at 0 and at `distance`."""
    s = np.array([0.0, distance])
    f = curvature / 2 * (s - minimum) ** 2 + offset
    df = curvature * (s - minimum)
    return [torch.tensor(v, dtype=torch.float64)[None] for v in (f, df)]


@pytest.mark.parametrize(("distance", "alpha"), [(1.0, 0.0), (2.0, 1.0), (0.5, -0.5), (0.25, -0.75), (1.5, 0.5)])
def test_alpha_on_a_quadratic_is_where_the_step_lands(distance, alpha):
    """Minimum at s = 1: a step of 1 lands on it (0), of 2 level on the far side (1), of 0.5
    half-way (-0.5); any weights fit exact observations exactly."""
    f, df = quadratic_observations(curvature=3.0, minimum=1.0, distance=distance)
    for var_f, var_df in (([1.0, 1.0], [1.0, 1.0]), ([0.1, 7.0], [2.0, 0.01])):
        got = noise.fit_alpha(torch.tensor([distance], dtype=torch.float64), f, df,
                              torch.tensor([var_f], dtype=torch.float64), torch.tensor([var_df], dtype=torch.float64))
        assert got.item() == pytest.approx(alpha, abs=1e-9)


def test_alpha_of_a_concave_fit_is_minus_one():
    f, df = quadratic_observations(curvature=-2.0, minimum=1.0, distance=0.5)
    ones = torch.ones(1, 2, dtype=torch.float64)
    assert noise.fit_alpha(torch.tensor([0.5], dtype=torch.float64), f, df, ones, ones).item() == -1.0


def test_instruments_of_a_step_equal_cockpits_fit_redone_with_numpy(data):
    """alpha and the norm test of k steps, from the autograd loop's losses and gradients at both
    ends, the fit solved by numpy's weighted least squares."""
    x, y = data
    before = nets_thetas(2, seed=2)
    after = before + 0.05 * nets_thetas(2, seed=3)
    got = noise.noise_instruments(before, after, x, y, HIDDEN, batch_size=16)
    for k in range(2):
        step = (after[k] - before[k]).numpy()
        t = np.linalg.norm(step)
        ends = [autograd_per_sample(theta, x, y) for theta in (before[k], after[k])]
        f = np.array([losses.mean().item() for losses, _ in ends])
        projected = [grads.numpy() @ (step / t) for _, grads in ends]
        df = np.array([p.mean() for p in projected])
        variances = np.array([losses.var().item() for losses, _ in ends] + [p.var(ddof=1) for p in projected])
        design = np.array([[1, 0, 0], [1, t, t**2], [0, 1, 0], [0, 1, 2 * t]])
        root = 1 / np.sqrt(variances)
        mu = np.linalg.lstsq(design * root[:, None], np.concatenate([f, df]) * root, rcond=None)[0]
        expected = -1.0 if mu[2] < 0 else 2 * t / (-mu[1] / mu[2]) - 1
        assert got["noise.alpha"][k].item() == pytest.approx(expected, rel=1e-8, abs=1e-10)
        g = ends[0][1].numpy()
        b_simple = np.trace(np.cov(g, rowvar=False, bias=True)) / np.sum(g.mean(0) ** 2)
        assert got["noise.norm_test"][k].item() == pytest.approx(np.sqrt(b_simple / 16), rel=1e-10)


@pytest.mark.parametrize("batch_size", [None, 16])
def test_training_logs_the_instruments_at_its_noise_steps(tiny_dataset, data, batch_size):
    x, y = data
    config = tiny_config(optimizer="sgd", lr=0.3, momentum=0.9, batch_size=batch_size, steps=260, noise_every=20)
    log = train(config, tiny_dataset, record_trajectory=True)
    logged = np.flatnonzero(~np.isnan(log.columns["noise.b_simple"]))
    np.testing.assert_array_equal(logged, np.arange(0, 260, 20))  # across the chunk boundary at 250
    params = torch.from_numpy(log.trajectory["params"])
    expected = noise.noise_instruments(params[logged], params[logged + 1], x, y, HIDDEN,
                                       batch_size or config.n_train)
    for name in noise.NOISE_COLUMNS:
        assert np.isnan(np.delete(log.columns[name], logged)).all(), name
        np.testing.assert_allclose(log.columns[name][logged], expected[name].numpy(), rtol=1e-12, err_msg=name)


# --- the aggregation, the verdicts and the figure on a tiny two-regime study with noise ---------

NOISE_EVERY, MINIBATCH = 10, 16


def noise_study_config() -> dict:
    config = tiny_study_config()
    config["training"] = {**config["training"], "noise_every": NOISE_EVERY, "batch_size": [None, MINIBATCH]}
    return config


@pytest.fixture(scope="module")
def noise_aggregate(tmp_path_factory, tiny_dataset):
    root = tmp_path_factory.mktemp("noise_study")
    for batch_size in (None, MINIBATCH):
        for optimizer, axes in TINY_GRID.items():
            for lr in axes["lr"]:
                for momentum in axes["momentum"]:
                    for seed in TINY_SEEDS:
                        config = tiny_config(optimizer=optimizer, lr=lr, momentum=momentum, seed=seed,
                                             batch_size=batch_size, noise_every=NOISE_EVERY)
                        write_run(train(config, tiny_dataset), root / default_out(config))
    out = aggregate_and_judge(tmp_path_factory.mktemp("noise_aggregate"), root / "results/runs", noise_study_config())
    return root, out


def test_noise_summaries_equal_the_run_files(noise_aggregate):
    root, out = noise_aggregate
    runs = tables.select(pd.read_parquet(out / "runs.parquet"), budget=1.0, set="grid")
    checked = 0
    for row in runs.itertuples():
        frame = pd.read_parquet(root / default_out(tiny_config(
            optimizer=row.optimizer, lr=row.lr, momentum=row.momentum, seed=row.seed,
            batch_size=None if row.batch == "full" else int(row.batch), noise_every=NOISE_EVERY)))
        measured = frame.dropna(subset=["noise.b_simple"])
        assert list(measured["step"]) == list(range(0, len(frame), NOISE_EVERY))[: len(measured)]
        size = MINIBATCH if row.batch != "full" else TINY_DATA["n_train"]
        assert row.noise_b_simple_initial == measured["noise.b_simple"].iloc[0]
        above = measured["noise.b_simple"] > size
        expected_first = measured.loc[above, "step"].min() if above.any() else np.nan
        assert row.noise_first_step_above_batch == pytest.approx(expected_first, nan_ok=True)
        if row.diverged:
            assert np.isnan(row.noise_b_simple_final) and np.isnan(row.noise_alpha_median)
            continue
        checked += 1
        assert row.noise_b_simple_final == measured["noise.b_simple"].iloc[-1]
        assert row.noise_b_simple_median == measured["noise.b_simple"].median()
        assert row.noise_above_batch_frac == pytest.approx(above.mean())
        assert row.noise_alpha_median == pytest.approx(measured["noise.alpha"].median(), nan_ok=True)
    assert checked > 0


def test_noise_claims_are_judged_where_they_apply(noise_aggregate):
    _, out = noise_aggregate
    table = pd.read_parquet(out / "verdicts.parquet")
    rows = {claim: table[(table["id"] == claim) & (table["budget"] == 1.0)] for claim in ("8a", "8b", "8c", "8d")}
    assert set(rows["8a"]["regime"]) == {str(MINIBATCH)}  # a claim about sampling noise: minibatch only
    assert set(rows["8b"]["regime"]) == {"full", str(MINIBATCH)}
    assert len(rows["8c"]) == 4  # 2 regimes x final / best val loss
    assert len(rows["8d"]) == 1  # compares the regimes
    for claim, found in rows.items():
        assert not found["detail"].str.startswith("cannot be tested").any(), (claim, found["detail"].tolist())
        assert found["verdict"].isin(VERDICTS).all()


def test_noise_figure_draws_both_regimes(noise_aggregate):
    _, out = noise_aggregate
    agg = tables.load_aggregate(out)
    fig = render.build_figure("noise", agg)
    scale, alpha = fig.axes[:2]
    labels = [line.get_label() for line in scale.get_lines()]
    assert any("full batch" in label for label in labels) and any(f"batch {MINIBATCH}" in label for label in labels)
    assert any(f"batch {MINIBATCH}" in label for label in [line.get_label() for line in alpha.get_lines()])


def test_report_has_the_noise_section_with_the_claims_where_they_hold(noise_aggregate, tmp_path):
    from bs4 import BeautifulSoup

    from conftest import REPO
    from optimizer_dynamics import report

    _, out = noise_aggregate
    render.main(["--aggregate-dir", str(out), "--out-dir", str(tmp_path / "figures")])
    html = tmp_path / "findings.html"
    report.main(["--source", str(REPO / "report" / "findings.py"), "--aggregate-dir", str(out),
                 "--figures-dir", str(tmp_path / "figures"), "--out-html", str(html)])
    page = BeautifulSoup(html.read_text(encoding="utf-8"), "html.parser")
    heading = next(h for h in page.find_all("h2") if h.get_text(strip=True) == "Gradient noise")
    section = []
    for node in heading.find_all_next():
        if node.name == "h2":
            break
        section.append(node)
    text = " ".join(" ".join(node.get_text(" ", strip=True).split()) for node in section if node.name in ("p", "li"))
    assert f"taken every {NOISE_EVERY} steps." in text and "McCandlish et al., 2018" in text
    claims = pd.read_parquet(out / "verdicts.parquet").drop_duplicates("id").set_index("id")
    for claim in ("8a", "8b", "8c", "8d"):  # linked to its row in the verdict table, where it is worded
        assert any(node.name == "a" and node.get("href") == f"#claim-{claim}" for node in section), claim
        row = " ".join(page.find(id=f"claim-{claim}").find_parent("tr").get_text(" ", strip=True).split())
        assert all(" ".join(claims.loc[claim, column].split()) in row for column in ("claim", "lead"))
    images = [node for node in section if node.name == "figure"]
    assert len(images) == 1 and images[0].find("img")["src"].startswith("data:image/png")
