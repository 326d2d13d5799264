"""Render the findings report (report/findings.py) into one self-contained HTML page, and a PDF.

    python -m optimizer_dynamics.report --source report/findings.py --aggregate-dir results/aggregate
        --figures-dir results/figures --out-html results/report/findings.html [--out-pdf findings.pdf]

With `quarto` on PATH the source is rendered by `quarto render`. Without it, the same steps run
offline, each a library call:
    jupytext   percent script -> notebook
    papermill  execute it, the input directories injected as parameters, in this Python's own
               ipykernel (never a kernelspec installed elsewhere on the machine)
    nbconvert  executed notebook -> markdown, code cells hidden, images written beside it
    pandoc     markdown -> standalone HTML with a table of contents; the stylesheet and every
               image embedded, so the page makes no network request
    typst      (PDF) pandoc markdown -> .typ, compiled by the typst Python module
Intermediates live in a temporary directory; outputs are written to a temporary name and renamed,
so a killed render never leaves a half-written report. A failure names the stage that failed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from optimizer_dynamics.atomic import atomic_path

STYLESHEET = "style.css"  # beside the source; the HTML page embeds it (Quarto: the header's css)
# What a reader's screen holds (a laptop's viewport), and the page's bounds in it with every fold
# closed: tests/test_report.py checks them in Chromium, benchmarks/report_page.py measures any page.
READER_VIEWPORT = (1280, 800)
MAX_SCREENS = 15
MAX_HTML_BYTES = 5_000_000
# Pandoc wraps every table in a typst figure, and figures do not break across pages: a long
# verdict table would overflow its page. Justified text in narrow table cells reads badly, and
# long identifiers (eff_step_late, ...) need a smaller size to stay inside their column.
# The page numbers its figures in their captions ("Figure 3. ..."), so typst does not again.
TYPST_HEADER = """#show figure: set block(breakable: true)
#show figure.where(kind: image): set figure(numbering: none)
#show table.cell: set par(justify: false)
#show table: set text(size: 8pt)
"""


# The verdict marks keep their colours in the PDF: a pandoc filter wraps each mark (a link or span
# of class verdict-<word>) in typst's #text(fill: ...), with the colours the stylesheet gives them.
VERDICT_COLOUR = re.compile(r"\.verdict-([a-z-]+)\s*\{\s*color:\s*(#[0-9a-fA-F]{3,6})")
TYPST_VERDICT_FILTER = """local colours = {%s}
local function coloured(el)
  for _, class in ipairs(el.classes) do
    if colours[class] then
      return {pandoc.RawInline("typst", '#text(fill: rgb("' .. colours[class] .. '"))['), el, pandoc.RawInline("typst", "]")}
    end
  end
end
Link = coloured
Span = coloured
"""


class RenderError(RuntimeError):
    """A render stage failed; the message starts with the stage's name."""


class ToolFailure(RuntimeError):
    """A tool's failure already put in words (no exception type worth adding)."""


@contextlib.contextmanager
def stage(name: str, timings: dict[str, float]):
    """Time the block; re-raise any failure inside it as a RenderError naming the stage."""
    started = time.perf_counter()
    try:
        yield
    except RenderError:
        raise
    except Exception as error:
        detail = str(error) if isinstance(error, ToolFailure) else f"{type(error).__name__}: {error}"
        raise RenderError(f"{name} stage failed: {detail}") from error
    timings[name] = time.perf_counter() - started


def render(source: Path, aggregate_dir: Path, figures_dir: Path, out_html: Path,
           out_pdf: Path | None = None) -> dict[str, float]:
    """Render and return the seconds each stage took."""
    stylesheet = source.with_name(STYLESHEET)
    for label, path in (("--source", source), ("--aggregate-dir", aggregate_dir), ("--figures-dir", figures_dir),
                        ("the stylesheet beside --source", stylesheet)):
        if not path.exists():
            raise RenderError(f"{label} {path} does not exist")
    parameters = {"aggregate_dir": str(aggregate_dir.resolve()), "figures_dir": str(figures_dir.resolve())}
    with tempfile.TemporaryDirectory(prefix="report-") as tmp:
        work = Path(tmp)
        if shutil.which("quarto"):
            return _render_with_quarto(source, stylesheet, parameters, work, out_html, out_pdf)
        return _render_offline(source, stylesheet, parameters, work, out_html, out_pdf)


def _render_offline(source, stylesheet, parameters, work, out_html, out_pdf) -> dict[str, float]:
    timings: dict[str, float] = {}
    with stage("read source", timings):
        notebook = _to_notebook(source, work / "findings.ipynb")
    with stage("execute", timings):
        executed = _execute(notebook, work / "executed.ipynb", parameters)
    with stage("to markdown", timings):
        markdown = _to_markdown(executed, work / "findings.md")

    def timed(name, build, out):
        with stage(name, timings):
            return build(), out

    # The HTML and the PDF are built side by side: each is mostly a tool's process (pandoc, typst).
    builds = [("html", lambda: _to_html(markdown, stylesheet, work), out_html)]
    if out_pdf is not None:
        builds.append(("pdf", lambda: _to_pdf(markdown, stylesheet, work), out_pdf))
    with ThreadPoolExecutor(max_workers=len(builds)) as pool:
        built = dict(future.result() for future in [pool.submit(timed, *build) for build in builds])
    _publish_all(built)
    return timings


def _to_html(markdown: Path, stylesheet: Path, work: Path) -> Path:
    html = _pandoc(markdown, work / "findings.html", "html5",
                   ["--standalone", "--embed-resources", "--toc", "--toc-depth=2", f"--css={stylesheet}",
                    "--section-divs"])
    _check_self_contained(html)
    return html


def _to_notebook(source: Path, out: Path) -> Path:
    import jupytext

    notebook = jupytext.read(source, fmt="py:percent")
    # Papermill and nbclient need a kernel name; _execute decides which Python it runs.
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    jupytext.write(notebook, out, fmt="ipynb")
    return out


def _execute(notebook: Path, out: Path, parameters: dict) -> Path:
    import papermill
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    # No kernel directories: "python3" then resolves to ipykernel's built-in spec, whose argv is
    # sys.executable -- the Python (the venv) running this render, whatever else is installed.
    # IPC (unix sockets in the work directory) rather than TCP: nothing listens on a port.
    kernel = KernelManager(kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[]),
                           transport="ipc", ip=str(notebook.parent / "kernel"))
    try:
        papermill.execute_notebook(str(notebook), str(out), parameters=parameters, km=kernel, progress_bar=False,
                                   cwd=str(notebook.parent), log_output=False)
    except papermill.PapermillExecutionError as error:
        # The exception and the source line that raised it, not pages of library frames.
        frames = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error.traceback)).splitlines()
        line = next((f.split("-->", 1)[1].strip() for f in frames if f.lstrip().startswith("-")
                     and "-->" in f), "")
        at = f" at `{line.lstrip('0123456789 ')}`" if line else ""
        raise ToolFailure(f"report cell {error.exec_count} raised {error.ename}: {error.evalue}{at}") from None
    finally:
        # nbclient shuts down only kernels it created itself.
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=True)
    return out


def _to_markdown(executed: Path, out: Path) -> Path:
    import nbformat
    from nbconvert import MarkdownExporter

    exporter = MarkdownExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, resources = exporter.from_notebook_node(nbformat.read(executed, as_version=4),
                                                  resources={"output_files_dir": f"{out.stem}_files"})
    for name, data in resources.get("outputs", {}).items():
        path = out.parent / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    out.write_text(body, encoding="utf-8")
    return out


def _pandoc(markdown: Path, out: Path, to: str, extra_args: list[str]) -> Path:
    import pypandoc

    # Pandoc's own markdown: implicit_figures makes an image alone in a paragraph a figure whose
    # caption is its alt text; the YAML header of the first cell supplies the title. A wide
    # --columns keeps pandoc from deriving fixed column widths from the pipe tables' dash rows
    # (which squeezes a column of numbers into overlap): the browser and typst size them instead.
    pypandoc.convert_file(str(markdown), to, format="markdown", outputfile=str(out),
                          extra_args=[f"--resource-path={markdown.parent}", "--columns=10000", *extra_args])
    return out


def _check_self_contained(html: Path) -> None:
    text = html.read_text(encoding="utf-8")
    external = re.findall(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//[^"'\s>]+""",
                          text, flags=re.IGNORECASE)
    if external:
        raise ToolFailure(f"the page references external resources: {external[:3]}")


def _to_pdf(markdown: Path, stylesheet: Path, work: Path) -> Path:
    import typst

    header = work / "header.typ"
    header.write_text(TYPST_HEADER, encoding="utf-8")
    colours = VERDICT_COLOUR.findall(stylesheet.read_text(encoding="utf-8"))
    verdict_filter = work / "verdict-colours.lua"
    verdict_filter.write_text(TYPST_VERDICT_FILTER % ", ".join(f'["verdict-{word}"] = "{colour}"'
                                                               for word, colour in colours), encoding="utf-8")
    typ = _pandoc(markdown, work / "findings.typ", "typst",
                  ["--standalone", "--toc", "--toc-depth=2", f"--include-in-header={header}",
                   f"--lua-filter={verdict_filter}"])
    pdf = work / "findings.pdf"
    # Image paths in the markdown are absolute; typst resolves "/..." against its root.
    typst.compile(str(typ), output=str(pdf), root=typ.anchor)
    return pdf


def _render_with_quarto(source, stylesheet, parameters, work, out_html, out_pdf) -> dict[str, float]:
    timings: dict[str, float] = {}
    copy = work / source.name  # quarto writes beside its input: keep report/ clean
    shutil.copyfile(source, copy)
    shutil.copyfile(stylesheet, work / stylesheet.name)
    params = [arg for name, value in parameters.items() for arg in ("-P", f"{name}:{value}")]
    env = {**os.environ, "QUARTO_PYTHON": sys.executable}
    built = {}
    with stage("quarto", timings):
        for fmt, suffix, out in (("html", ".html", out_html), ("typst", ".pdf", out_pdf)):
            if out is None:
                continue
            result = subprocess.run(["quarto", "render", str(copy), "--to", fmt, "--output-dir", str(work / fmt), *params],
                                    capture_output=True, text=True, env=env)
            if result.returncode != 0:
                raise ToolFailure(f"quarto render --to {fmt} exited {result.returncode}: {result.stderr[-2000:]}")
            built[work / fmt / copy.with_suffix(suffix).name] = out
    _publish_all(built)
    return timings


def _publish_all(built: dict[Path, Path]) -> None:
    """Only once every output is built: copy each into place under a temporary name, then rename,
    so readers see the old file or the new one, and a failed PDF leaves the old HTML beside it."""
    for path, out in built.items():
        with atomic_path(out) as tmp:
            shutil.copyfile(path, tmp)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=Path("report/findings.py"),
                        help=f"Jupyter percent script whose first cell is the Quarto YAML header; {STYLESHEET} beside it")
    parser.add_argument("--aggregate-dir", type=Path, default=Path("results/aggregate"))
    parser.add_argument("--figures-dir", type=Path, default=Path("results/figures"))
    parser.add_argument("--out-html", type=Path, default=Path("results/report/findings.html"))
    parser.add_argument("--out-pdf", type=Path, default=None, help="also render a PDF (typst)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        timings = render(args.source, args.aggregate_dir, args.figures_dir, args.out_html, args.out_pdf)
    except RenderError as error:
        sys.exit(f"report: {error}")
    stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
    outputs = " and ".join(str(p) for p in (args.out_html, args.out_pdf) if p is not None)
    print(f"report: wrote {outputs} in {time.perf_counter() - started:.1f} s ({stages})", file=sys.stderr)


if __name__ == "__main__":
    main()
