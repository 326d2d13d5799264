"""The rendered findings report, on the tiny study: self-contained, faithful to the aggregate
tables, and inert to markup hidden in config or data strings."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import stat
import sys
from pathlib import Path

import pandas as pd
import pytest
from bs4 import BeautifulSoup

from optimizer_dynamics import report
from optimizer_dynamics.optimizers import OPTIMIZERS

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "report" / "findings.py"
HAS_TYPST = importlib.util.find_spec("typst") is not None
# Markup a hostile or careless config/data string could carry.
INJECTED = "<script>alert('x')</script> <img src=x onerror=alert(1)> [click](javascript:alert(1)) *loud*"


@pytest.fixture(scope="session")
def tiny_figures(tmp_path_factory, tiny_aggregate) -> Path:
    from optimizer_dynamics.figures import render

    out = tmp_path_factory.mktemp("figures")
    render.main(["--aggregate-dir", str(tiny_aggregate), "--out-dir", str(out)])
    return out


def render(aggregate: Path, figures: Path, out: Path, pdf: bool = False) -> tuple[Path, Path | None]:
    html, pdf_path = out / "findings.html", (out / "findings.pdf" if pdf else None)
    argv = ["--source", str(SOURCE), "--aggregate-dir", str(aggregate), "--figures-dir", str(figures),
            "--out-html", str(html)]
    report.main(argv + (["--out-pdf", str(pdf_path)] if pdf else []))
    return html, pdf_path


@pytest.fixture(scope="session")
def rendered(tmp_path_factory, tiny_aggregate, tiny_figures) -> tuple[Path, Path | None]:
    return render(tiny_aggregate, tiny_figures, tmp_path_factory.mktemp("report"), pdf=HAS_TYPST)


@pytest.fixture(scope="session")
def page(rendered) -> BeautifulSoup:
    return BeautifulSoup(rendered[0].read_text(encoding="utf-8"), "html.parser")


def table_with_header(page: BeautifulSoup, *names: str) -> pd.DataFrame:
    """The one table whose header cells include all `names`, as text."""
    found = []
    for table in page.find_all("table"):
        header = [th.get_text(" ", strip=True) for th in table.find("thead").find_all("th")]
        if all(name in header for name in names):
            rows = [[td.get_text(" ", strip=True) for td in tr.find_all("td")] for tr in table.find("tbody").find_all("tr")]
            found.append(pd.DataFrame(rows, columns=header))
    assert len(found) == 1, f"expected one table with columns {names}, found {len(found)}"
    return found[0]


def test_html_is_self_contained(rendered, page):
    html = rendered[0].read_text(encoding="utf-8")
    external = re.findall(r"""\b(?:src|href)\s*=\s*["']?(?:[a-z]+:)?//""", html, flags=re.IGNORECASE)
    assert external == []
    # The only scripts: the vega-embed bundle and one call per interactive chart, all inline.
    scripts = page.find_all("script")
    assert len(scripts) == 3 and not any(script.get("src") for script in scripts)
    assert "window.vegaEmbed" in scripts[0].get_text()
    images = page.find_all("img")
    assert images, "the figures are missing"
    assert all(img["src"].startswith("data:image/png;base64,") for img in images)
    assert [s for s in page.find_all("link") if s.get("href")] == []  # the stylesheet is inline


def test_every_figure_has_a_caption(page):
    figures = page.find_all("figure")
    # loss_curves, norms, effective_step, lr_sensitivity, momentum, saturation, adaptivity (the tiny study has
    # neither curvature runs nor noise steps, so neither section has a figure)
    assert len(figures) == 7
    assert all(f.find("figcaption") and f.find("figcaption").get_text(strip=True) for f in figures)


def test_figures_are_numbered_in_page_order_and_the_appendix_links_to_them(page):
    numbered = [(figure.get("id"), figure.find("figcaption").get_text(" ", strip=True)) for figure in page.find_all("figure")]
    anchored = [(anchor, caption) for anchor, caption in numbered if anchor]  # one per figure; its other regimes have none
    assert [int(re.match(r"Figure (\d+)\. ", caption).group(1)) for _, caption in anchored] == list(
        range(1, len(anchored) + 1))
    links = [a["href"][1:] for a in page.select("details.measurements a[href^='#fig-']")]
    assert links and set(links) <= {anchor for anchor, _ in anchored}


def test_the_pdf_colours_every_verdict_mark_as_the_page_does():
    from optimizer_dynamics.claims.base import VERDICTS

    colours = dict(report.VERDICT_COLOUR.findall((REPO / "report" / "style.css").read_text(encoding="utf-8")))
    assert set(colours) == {verdict.replace(" ", "-") for verdict in VERDICTS}


def test_every_link_within_the_page_lands_on_an_element(page):
    ids = {element["id"] for element in page.find_all(id=True)}
    internal = [a["href"][1:] for a in page.find_all("a", href=True) if a["href"].startswith("#")]
    assert internal and not [target for target in internal if target not in ids]


def test_code_is_hidden(rendered):
    html = rendered[0].read_text(encoding="utf-8")
    assert "import pandas" not in html and "def esc" not in html


def test_the_page_opens_on_the_verdicts_one_line_per_claim_with_a_badge_per_setting(tiny_aggregate, page):
    verdicts = pd.read_parquet(tiny_aggregate / "verdicts.parquet")
    claims = verdicts.drop_duplicates("id")
    shown = table_with_header(page, "Claim", "Key number", "Each setting")
    assert list(shown["Claim"]) == [" ".join(f"{c.claim} ({c.source})".split()) for c in claims.itertuples()]
    assert list(shown["Key number"]) == [" ".join(h.split()) for h in claims["lead"]]
    summary = next(t for t in page.find_all("table") if "Key number" in t.get_text())
    rows = summary.find("tbody").find_all("tr")
    for row, (_, group) in zip(rows, verdicts.groupby("id", sort=False)):
        badges = row.find_all("td")[-1].find_all(class_="verdict")
        assert [b["title"] for b in badges] == [f"{s}: {v}" for s, v in zip(group["setting"], group["verdict"])]
        assert [b["class"][-1] for b in badges] == [f"verdict-{v.replace(' ', '-')}" for v in group["verdict"]]
        # each badge links to its setting's row of measurements in the appendix
        for badge, setting in zip(badges, group["setting"]):
            target = page.find(id=badge["href"].removeprefix("#"))
            assert target is not None and target.find_parent("details", class_="measurements")
            assert " ".join(target.get_text(" ", strip=True).split()) == " ".join(setting.split())
    # The measured numbers are one click away: a folded table per claim, one row per setting.
    details = page.find_all("details", class_="measurements")
    assert len(details) == len(claims)
    for fold, (_, group) in zip(details, verdicts.groupby("id", sort=False)):
        cells = [tr.find_all("td") for tr in fold.find("tbody").find_all("tr")]
        assert [c[0].get_text(" ", strip=True) for c in cells] == list(group["setting"])
        assert [" ".join(c[2].get_text(" ", strip=True).split()) for c in cells] == [
            " ".join(k.split()) for k in group["key"]]
        assert [" ".join(c[3].get_text(" ", strip=True).split()) for c in cells] == [
            " ".join(m.split()) for m in group["measured"]]
    # The key findings come first, then the verdicts, before the set-up and every experiment
    # section; the measurements are the appendix.
    headings = [h.get_text(strip=True) for h in page.find_all("h2")]
    assert headings[:2] == ["Key findings", "Verdicts"]
    assert headings[-1] == "Appendix: the measurements behind each verdict"
    assert all(fold.find_parent("section")["id"] == "appendix-the-measurements-behind-each-verdict" for fold in details)


def test_run_counts_come_from_the_runs(tiny_aggregate, page):
    runs = pd.read_parquet(tiny_aggregate / "runs.parquet", filters=[("budget", "==", 1.0)])
    shown = table_with_header(page, "Optimizer", "Runs", "Diverged").set_index("Optimizer")
    expected = runs.groupby("optimizer")["diverged"].agg(["size", "sum"])
    assert runs["diverged"].any(), "the tiny study should include diverged runs"
    for name, row in expected.iterrows():
        label = OPTIMIZERS[name].label
        assert shown.loc[label, "Runs"] == str(row["size"]) and shown.loc[label, "Diverged"] == str(row["sum"])
    assert shown.loc["all", "Runs"] == str(len(runs))
    assert shown.loc["all", "Diverged"] == str(int(runs["diverged"].sum()))


def test_divergence_is_shown_per_lr(tiny_aggregate, page):
    cells = pd.read_parquet(tiny_aggregate / "cells.parquet", filters=[("budget", "==", 1.0)])
    text = page.get_text(" ", strip=True)
    for name in cells["optimizer"].unique():
        assert f"{OPTIMIZERS[name].label}: diverged runs at each learning rate" in text
    tables = [t for t in page.find_all("table") if "diverged runs at each" in t.find("caption").get_text()]
    assert len(tables) == cells["optimizer"].nunique()
    shown = [td.get_text(strip=True) for t in tables for tr in t.find("tbody").find_all("tr") for td in tr.find_all("td")[1:]]
    counted = [cell for cell in shown if cell != "not run"]
    assert len(counted) == len(cells)  # every (optimizer, lr, momentum), zero divergences included
    assert sum(int(cell.split(" of ")[0]) for cell in counted) == int(cells["n_diverged"].sum())


def test_numbers_in_the_text_are_the_aggregate_numbers(tiny_aggregate, page):
    cells = pd.read_parquet(tiny_aggregate / "cells.parquet", filters=[("budget", "==", 1.0)])
    study = json.loads((tiny_aggregate / "study.json").read_text())
    ref = study["config"]["analysis"]["reference"]["sgd"]
    sgd = cells[(cells.optimizer == "sgd") & (cells.lr == ref["lr"]) & (cells.momentum == ref["momentum"])].iloc[0]
    text = " ".join(page.get_text(" ", strip=True).split())
    assert f"{sgd.median_final_val_loss:.3g}" in text  # the reference table
    # Experiment 1's sentence presents claims 1b and 1a in the section's regime, at the usual lrs
    verdicts = pd.read_parquet(tiny_aggregate / "verdicts.parquet")
    shown = verdicts[(verdicts["budget"] == 1.0) & (verdicts["comparison"] == "usual lrs")
                     & verdicts["metric"].isin(["final", None])]
    for claim_id in ("1b", "1a"):
        key = shown.loc[shown["id"] == claim_id, "key"].iloc[0]
        assert " ".join(key.split()) in text


@pytest.fixture(scope="session")
def injected_aggregate(tmp_path_factory, tiny_aggregate) -> Path:
    """The tiny aggregate with markup in a config string and in every verdict text column."""
    out = tmp_path_factory.mktemp("injected") / "aggregate"
    shutil.copytree(tiny_aggregate, out)
    study = json.loads((out / "study.json").read_text())
    study["config"]["analysis"]["note"] = INJECTED
    (out / "study.json").write_text(json.dumps(study))
    verdicts = pd.read_parquet(out / "verdicts.parquet")
    for column in ("claim", "source", "metric", "measured", "detail"):
        verdicts[column] = verdicts[column] + " " + INJECTED
    verdicts.to_parquet(out / "verdicts.parquet")
    return out


def test_markup_in_config_and_data_reaches_the_page_as_text(tmp_path, injected_aggregate, tiny_figures):
    html_path, _ = render(injected_aggregate, tiny_figures, tmp_path)
    html = html_path.read_text(encoding="utf-8")
    page = BeautifulSoup(html, "html.parser")
    scripts = page.find_all("script")  # the interactive charts' own: the bundle and two calls
    assert len(scripts) == 3 and not any("alert(" in script.get_text() for script in scripts)
    assert not [img for img in page.find_all("img") if img.get("onerror") or img["src"] == "x"]
    assert not [a for a in page.find_all("a") if "javascript" in a.get("href", "")]
    assert "&lt;script&gt;alert" in html
    shown = " ".join(page.get_text(" ").split())
    flat = " ".join(INJECTED.split())
    assert f"analysis.note {flat}" in shown  # the config table row, verbatim as text
    assert shown.count(flat) >= 5  # the config row and the four verdict text columns


def test_pdf(rendered):
    if not HAS_TYPST:
        pytest.skip("the typst Python package is not installed, so the offline chain cannot make a PDF")
    pdf = rendered[1]
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert pdf.stat().st_size > 50_000  # the seven figures are embedded


def test_a_failing_stage_is_named_and_leaves_no_output(tmp_path, tiny_aggregate, tiny_figures):
    broken = tmp_path / "aggregate"
    shutil.copytree(tiny_aggregate, broken)
    (broken / "verdicts.parquet").unlink()
    out = tmp_path / "out" / "findings.html"
    with pytest.raises(SystemExit) as failure:
        report.main(["--source", str(SOURCE), "--aggregate-dir", str(broken), "--figures-dir", str(tiny_figures),
                     "--out-html", str(out)])
    message = str(failure.value.code)
    assert message.startswith("report: execute stage failed") and "verdicts.parquet" in message
    assert not out.exists()


def test_missing_input_directory_is_named(tmp_path, tiny_figures):
    with pytest.raises(SystemExit) as failure:
        report.main(["--aggregate-dir", str(tmp_path / "nowhere"), "--figures-dir", str(tiny_figures),
                     "--out-html", str(tmp_path / "x.html")])
    assert "--aggregate-dir" in str(failure.value.code) and "nowhere" in str(failure.value.code)


def test_quarto_renders_when_it_is_on_path(tmp_path, monkeypatch, tiny_aggregate, tiny_figures):
    """With `quarto` on PATH the report is Quarto's; a stand-in records how it is called."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    fake = bin_dir / "quarto"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> {calls}\n'
        'src=$2; fmt=$4; dir=$6; mkdir -p "$dir"; name=$(basename "$src" .py)\n'
        'if [ "$fmt" = html ]; then echo "<html>quarto $QUARTO_PYTHON</html>" > "$dir/$name.html";'
        ' else echo "%PDF-quarto" > "$dir/$name.pdf"; fi\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    html, pdf = tmp_path / "out" / "findings.html", tmp_path / "out" / "findings.pdf"
    report.main(["--source", str(SOURCE), "--aggregate-dir", str(tiny_aggregate), "--figures-dir", str(tiny_figures),
                 "--out-html", str(html), "--out-pdf", str(pdf)])
    assert html.read_text().strip() == f"<html>quarto {sys.executable}</html>"
    assert pdf.read_text().strip() == "%PDF-quarto"
    html_call, pdf_call = calls.read_text().splitlines()
    assert html_call.startswith("render ") and " --to html " in html_call and " --to typst " in pdf_call
    assert f"-P aggregate_dir:{tiny_aggregate.resolve()}" in html_call
    assert f"-P figures_dir:{tiny_figures.resolve()}" in html_call
    assert not (SOURCE.parent / "findings.html").exists()  # Quarto ran on a copy, not beside the source


def test_the_notebook_runs_in_this_python_whatever_kernels_are_installed(tmp_path, monkeypatch, tiny_aggregate,
                                                                         tiny_figures):
    """The kernel is this interpreter (the venv's), even when a kernelspec named python3 elsewhere
    on the machine points at a Python that cannot run the report."""
    elsewhere = tmp_path / "jupyter" / "kernels" / "python3"
    elsewhere.mkdir(parents=True)
    (elsewhere / "kernel.json").write_text(json.dumps(
        {"argv": ["/bin/false", "-f", "{connection_file}"], "display_name": "broken", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    source = tmp_path / "probe.py"
    source.write_text(
        '# %% [markdown]\n# ---\n# title: "probe"\n# ---\n\n'
        '# %% tags=["parameters"]\naggregate_dir = figures_dir = ""\n\n'
        "# %%\nimport sys\nfrom IPython.display import Markdown\nMarkdown(f'kernel: `{sys.executable}`')\n"
    )
    shutil.copyfile(SOURCE.with_name(report.STYLESHEET), tmp_path / report.STYLESHEET)
    out = tmp_path / "probe.html"
    report.main(["--source", str(source), "--aggregate-dir", str(tiny_aggregate), "--figures-dir", str(tiny_figures),
                 "--out-html", str(out)])
    assert f"kernel: {sys.executable}" in " ".join(BeautifulSoup(out.read_text(), "html.parser").get_text(" ").split())


# --- the report in a real browser ---------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through Selenium: Debian's chromium and chromium-driver, which `make
    test` installs with apt-get (skipped, with the reason, where neither can be installed)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        pytest.skip("no chromium and chromedriver on PATH: make test installs them (apt-get) where it can")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    width, height = report.READER_VIEWPORT  # the viewport itself, not the window around it
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def opened(browser, rendered):
    browser.get(rendered[0].resolve().as_uri())
    return browser


def test_the_report_loads_in_chromium_without_console_errors_or_warnings(opened):
    _wait_for_marks(opened, "chart-curve-explorer")  # the charts have drawn
    errors = [entry for entry in opened.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors


def test_the_first_screen_shows_the_key_findings_and_each_links_to_its_evidence(opened):
    from selenium.webdriver.common.by import By

    heading = next(h for h in opened.find_elements(By.TAG_NAME, "h2") if h.text == "Key findings")
    findings = opened.find_elements(By.CSS_SELECTOR, "section#key-findings li")
    height = opened.execute_script("return window.innerHeight")
    assert findings and heading.rect["y"] < height and findings[0].rect["y"] < height, (heading.rect, height)
    links = opened.find_elements(By.CSS_SELECTOR, "section#key-findings li a")
    assert len(links) == len(findings)
    for link in links:
        target = link.get_attribute("href").split("#", 1)[1]
        assert opened.find_elements(By.ID, target), target


def test_the_page_is_at_most_fifteen_screens_and_five_megabytes(rendered, opened):
    """With every fold closed, once its images are decoded (the default study's page is measured
    by benchmarks/report_page.py)."""
    opened.execute_async_script("const done = arguments[0]; Promise.all(Array.from(document.images)"
                                ".map(i => i.decode().catch(() => null))).then(() => done())")
    assert not opened.execute_script("return Array.from(document.querySelectorAll('details')).some(d => d.open)")
    height = opened.execute_script("return document.documentElement.scrollHeight")
    assert height <= report.MAX_SCREENS * report.READER_VIEWPORT[1], height
    assert rendered[0].stat().st_size <= report.MAX_HTML_BYTES


def test_a_badge_opens_its_folded_measurements(opened):
    """The appendix is folded (twice: the appendix, then each claim); a click on a verdict mark lands
    on its setting's row, unfolded and on screen."""
    from selenium.webdriver.common.by import By

    row_id = opened.find_elements(By.CSS_SELECTOR, "section#verdicts a.verdict")[0].get_attribute("href").split("#")[1]
    row = opened.find_element(By.ID, row_id)
    assert not row.is_displayed()
    mark = opened.find_elements(By.CSS_SELECTOR, "section#verdicts a.verdict")[0]
    opened.execute_script("arguments[0].scrollIntoView({block: 'center'})", mark)
    mark.click()
    top = opened.execute_script("return arguments[0].getBoundingClientRect().top", row)
    assert row.is_displayed() and -1 <= top < opened.execute_script("return window.innerHeight"), top  # (sub-pixel)
    opened.execute_script("document.querySelectorAll('details').forEach(d => d.open = false); window.scrollTo(0, 0)")


def test_figures_fit_the_text_column(opened):
    from selenium.webdriver.common.by import By

    column = opened.execute_script(
        "const s = getComputedStyle(document.body);"
        "return document.body.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);")
    images = opened.find_elements(By.CSS_SELECTOR, "figure img")
    assert images
    for image in images:
        assert image.size["width"] <= column + 1, (image.get_attribute("alt")[:60], image.size, column)
    for chart_id in ("chart-lr-sensitivity", "chart-curve-explorer"):  # drawn at their own size, not scaled
        _unfold(opened, chart_id)
        drawn = _wait_for_marks(opened, chart_id) and opened.find_element(By.CSS_SELECTOR, f"#{chart_id} svg")
        assert drawn.size["width"] <= column + 1, (chart_id, drawn.size, column)
        assert abs(drawn.size["width"] - float(drawn.get_attribute("width"))) < 1, chart_id
    opened.execute_script("document.querySelectorAll('details').forEach(d => d.open = false); window.scrollTo(0, 0)")


def _marks(driver, chart_id: str) -> list[str]:
    """The drawn marks of one interactive chart (its SVG's paths), as their geometry."""
    from selenium.webdriver.common.by import By

    return [path.get_attribute("d") for path in
            driver.find_elements(By.CSS_SELECTOR, f"#{chart_id} svg g.mark-line path, #{chart_id} svg g.mark-symbol path")]


def _unfold(driver, element_id: str) -> None:
    """Open the folds around an element (a chart the page folds away), as a reader's click would."""
    driver.execute_script("for (let d = document.getElementById(arguments[0]).closest('details'); d;"
                          " d = d.parentElement.closest('details')) d.open = true;", element_id)


def _wait_for_marks(driver, chart_id: str, timeout: float = 20) -> list[str]:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(lambda d: _marks(d, chart_id) or False)


@pytest.mark.parametrize("chart_id", ["chart-lr-sensitivity", "chart-curve-explorer"])
def test_every_interactive_chart_draws_every_choice_of_its_menus(opened, chart_id):
    """Each option of each menu draws marks, and some option changes what is drawn; no warning."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _unfold(opened, chart_id)
    before = _wait_for_marks(opened, chart_id)
    assert before, f"{chart_id} drew no marks"
    selects = opened.find_elements(By.CSS_SELECTOR, f"#{chart_id} .vega-bindings select")
    assert selects, f"{chart_id} has no selectors"
    changed = False
    for element in selects:
        select = Select(element)
        current = select.first_selected_option.get_attribute("value")
        for option in [o.get_attribute("value") for o in select.options]:
            select.select_by_value(option)
            after = _marks(opened, chart_id)
            assert any(after), (chart_id, option)
            changed |= after != before
        select.select_by_value(current)
    assert changed or all(len(Select(e).options) == 1 for e in selects), f"no selector of {chart_id} changed a mark"
    errors = [entry for entry in opened.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors


def test_the_curve_explorer_overlays_cells_and_draws_every_choice(opened):
    """Cells A and B start on the reference pair; choosing a cell C adds its curves beside them; every
    cell of the menu draws lines (the menus list only cells that exist)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    def legend():  # the curves' legend: the cells' names (the map's colour legend has numbers)
        return [t.text for t in opened.find_elements(By.CSS_SELECTOR, "#chart-curve-explorer .role-legend-label text")
                if ", lr " in t.text]

    _wait_for_marks(opened, "chart-curve-explorer")
    assert len(legend()) == 2, legend()
    slot_c = Select(opened.find_elements(By.CSS_SELECTOR, "#chart-curve-explorer .vega-bindings select")[2])
    choices = [option.text for option in slot_c.options]
    assert choices[0] == "none"
    for index in range(1, len(choices)):
        slot_c.select_by_index(index)
        assert choices[index] in legend(), choices[index]
        assert len(set(legend())) == 3 or choices[index] in legend()[:2]  # overlaid, unless it is A or B
        lines = opened.find_elements(By.CSS_SELECTOR, "#chart-curve-explorer svg g.mark-line path")
        assert all(line.get_attribute("d") for line in lines) and lines, choices[index]
    slot_c.select_by_index(0)
    # a click on a cell of the map adds that cell's curves
    from selenium.webdriver.common.action_chains import ActionChains

    squares = opened.find_elements(By.CSS_SELECTOR, "#chart-curve-explorer g.mark-rect path")
    assert squares
    before = legend()
    opened.execute_script("arguments[0].scrollIntoView({block: 'center'})", squares[0])
    ActionChains(opened).move_to_element(squares[0]).click().perform()
    added = [name for name in legend() if name not in before]
    assert len(added) == 1, (before, legend())
    errors = [entry for entry in opened.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
