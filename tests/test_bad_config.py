"""A bad configuration is refused before any job starts, with a message that names the key,
the bad value and what is allowed.

One table, every case run through the real command line (`snakemake --cores 1 --configfile
bad.yaml`) in its own copy of the repository: nothing may be created under results/, the exit
code is not 0, and the message is checked fragment by fragment.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKFLOW_PARTS = ("workflow", "config", "report", "scripts")
TEST_YAML = (REPO / "config/test.yaml").read_text()
TEST_CONFIG = yaml.safe_load(TEST_YAML)
# A file a successful YAML code-execution attack would create.
EXPLOIT_MARK = "PWNED"
DELETE = object()


def changed(**changes) -> str:
    """config/test.yaml with changes given as section__key=value (DELETE removes the key)."""
    config = copy.deepcopy(TEST_CONFIG)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = config
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return yaml.safe_dump(config)


def edited(old: str, new: str) -> str:
    """config/test.yaml's text with one literal edit: for what YAML itself makes of the text."""
    assert old in TEST_YAML, old
    return TEST_YAML.replace(old, new)


@dataclass
class Case:
    id: str
    config: str | None  # the --configfile's text; None: the file does not exist
    says: tuple[str, ...]  # the message names the key, the bad value and what is allowed
    # False: Snakemake itself refuses the file while reading it, before the workflow's checks
    # run (its message, not ours: see the cases).
    ours: bool = True
    args: tuple[str, ...] = ()


# A grid of 60 x 40 SGD cells (+ 2 Adam), keeping the cells the rest of test.yaml names.
HUGE_SGD = {"lr": [0.1, 0.5, *(k / 1000 for k in range(1, 59))], "momentum": [k / 100 for k in range(40)]}

CASES = [
    # --- wrong types, and numbers YAML reads as text
    Case("lr-quoted", edited("lr: [0.1, 0.5]", 'lr: ["0.1", 0.5]'),
         ("optimizers.sgd.lr[0]", "'0.1'", "allowed: a number > 0", "write 0.1 without quotes")),
    Case("lr-1e-3-read-as-text", edited("lr: [1.0e-3, 1.0e-2]", "lr: [1e-3, 1.0e-2]"),
         ("optimizers.adam.lr[0]", "'1e-3'", "allowed: a number > 0", "write 1.0e-3")),
    Case("steps-fraction", changed(training__steps=10.5),
         ("training.steps", "10.5", "allowed: an integer in [1, 1000000]")),
    Case("momentum-not-a-list", changed(optimizers__sgd__momentum=0.9),
         ("optimizers.sgd.momentum", "0.9", "allowed: a non-empty list, each a number in [0, 1)")),
    Case("nesterov-word", changed(training__nesterov="maybe"),
         ("training.nesterov", "'maybe'", "allowed: true or false")),
    Case("section-null", changed(training=None),
         ("training", "None", "allowed: a mapping with keys steps, batch_size")),
    # --- values out of range
    Case("lr-zero", changed(optimizers__sgd__lr=[0.0, 0.5]),
         ("optimizers.sgd.lr[0]", "0.0", "allowed: a number > 0")),
    Case("lr-negative", changed(optimizers__adam__lr=[1.0e-3, -0.01]),
         ("optimizers.adam.lr[1]", "-0.01", "allowed: a number > 0")),
    Case("momentum-one", changed(optimizers__sgd__momentum=[1.0]),
         ("optimizers.sgd.momentum[0]", "1.0", "allowed: a number in [0, 1)")),
    Case("momentum-negative", changed(optimizers__adam__momentum=[-0.9]),
         ("optimizers.adam.momentum[0]", "-0.9", "allowed: a number in [0, 1)")),
    Case("steps-zero", changed(training__steps=0),
         ("training.steps", "0", "allowed: an integer in [1, 1000000]")),
    Case("steps-absurd", changed(training__steps=10**9),
         ("training.steps", "1000000000", "allowed: an integer in [1, 1000000]")),
    Case("seed-negative", changed(seeds=[0, -1]), ("seeds[1]", "-1", "allowed: an integer >= 0")),
    Case("batch-larger-than-data", changed(training__batch_size=1000),
         ("training.batch_size", "1000", "data.n_train = 64", "allowed: null (full batch) or an integer in [1, 64]")),
    Case("window-reversed", changed(analysis__claimed_windows__sgd=[0.3, 0.1]),
         ("analysis.claimed_windows.sgd", "[0.3, 0.1]", "allowed: [low, high] with low < high")),
    # --- unknown or misspelled keys
    Case("unknown-optimizer", changed(optimizers__rmsprop={"lr": [0.1], "momentum": [0.0]}),
         ("optimizers", "'rmsprop'", "allowed keys here: sgd, adam")),
    Case("misspelled-top-level-key", changed(seed=[0, 1]),
         ("(top level)", "'seed'", "allowed keys here:", "seeds")),
    Case("misspelled-nested-key", changed(training__stpes=10),
         ("training", "'stpes'", "allowed keys here:", "steps")),
    Case("misspelled-grid-key", changed(optimizers__adam__betas=[0.9]),
         ("optimizers.adam", "'betas'", "allowed keys here: lr, momentum")),
    # --- empty or repeated lists
    Case("lr-empty", changed(optimizers__sgd__lr=[]),
         ("optimizers.sgd.lr", "[]", "allowed: a non-empty list, each a number > 0")),
    Case("seeds-empty", changed(seeds=[]), ("seeds", "[]", "allowed: a non-empty list, each an integer >= 0")),
    Case("lr-duplicate", changed(optimizers__sgd__lr=[0.1, 0.5, 0.1]),
         ("optimizers.sgd.lr", "0.1 is listed more than once", "allowed: each value once")),
    Case("seeds-duplicate", changed(seeds=[0, 1, 0]), ("seeds", "0 is listed more than once", "allowed: each value once")),
    # --- a grid too large to plan
    Case("grid-too-large", changed(max_jobs=2000, optimizers__sgd=HUGE_SGD),
         ("optimizers", "2402 (optimizer, lr, momentum) cells", "sgd 2400", "max_jobs is 2000",
          "allowed: at most max_jobs cells")),
    # --- cells named outside the grid
    Case("curvature-cell-not-in-grid", changed(curvature__cells__sgd={"lr": [0.3], "momentum": [0.0]}),
         ("curvature.cells.sgd.lr", "0.3", "allowed: one of ['0.1', '0.5']")),
    # Only with --replace-workflow-config can an optimizer leave the grid (otherwise
    # config/config.yaml's Adam grid stays).
    Case("curvature-optimizer-not-in-grid", changed(optimizers__adam=DELETE),
         ("curvature.cells.adam", "adam is not in optimizers", "allowed: cells of sgd"),
         args=("--replace-workflow-config",)),
    Case("reference-cell-not-in-grid", changed(analysis__reference__sgd={"lr": 0.3, "momentum": 0.0}),
         ("analysis.reference.sgd.lr", "0.3", "allowed: one of ['0.1', '0.5']")),
    # --- files Snakemake cannot read. Its message names neither the file nor the line:
    # Snakemake reads --configfile before any code of the workflow runs, so the workflow
    # cannot add to it.
    Case("invalid-yaml", edited("steps: 60", "steps: [60"), ("Config file is not valid JSON or YAML",), ours=False),
    # Read unsafely, the tag would run a command; read safely, it is refused.
    Case("python-object-tag", edited("max_jobs: 10", f'max_jobs: !!python/object/apply:os.system ["touch {EXPLOIT_MARK}"]'),
         ("Config file is not valid JSON or YAML",), ours=False),
    Case("not-a-mapping", "- 1\n- 2\n", ("Config file must be given as JSON or YAML with keys at top level",),
         ours=False),
    Case("missing-config-file", None, ("bad.yaml", "No such file or directory"), ours=False),
]


def refuse(case: Case, workdir: Path) -> list[str]:
    """Run the case in its own copy of the repository; what is wrong with the refusal."""
    for part in WORKFLOW_PARTS:
        shutil.copytree(REPO / part, workdir / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    if case.config is not None:
        (workdir / "bad.yaml").write_text(case.config)
    env = {**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--configfile", "bad.yaml", *case.args],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    ours = [line for line in output.splitlines() if line.startswith("invalid config: ")]
    message = ours[0] if ours else output
    problems = []
    if result.returncode == 0:
        problems.append("exit code 0")
    if (workdir / "results").exists():
        problems.append("results/ was created")
    if (workdir / EXPLOIT_MARK).exists():
        problems.append("the config ran code")
    if case.ours and not ours:
        problems.append("no 'invalid config:' line")
    problems += [f"message lacks {fragment!r}" for fragment in case.says if fragment not in message]
    return [f"{case.id}: {problem}\n    {message.strip()[-1500:]}" for problem in problems]


def test_every_bad_config_is_refused_before_any_job_with_a_clear_message(tmp_path):
    assert len({case.id for case in CASES}) == len(CASES)
    # Two at a time: each case is a Snakemake start-up (~2 s), mostly waiting on imports.
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports = pool.map(lambda case: refuse(case, tmp_path / case.id), CASES)
    problems = [problem for report in reports for problem in report]
    assert not problems, "\n".join(problems)
