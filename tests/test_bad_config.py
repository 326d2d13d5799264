"""A bad configuration is refused before any job starts, with a message that names the key,
the bad value and what is allowed.

One table, every case run through the real command line (`snakemake --cores 1 --configfile
bad.yaml`) in its own copy of the repository: nothing may be created under results/, the exit
code is not 0, and the message is checked fragment by fragment.

Then what a config cannot do even when accepted: inject shell (every value in a rule's command
is quoted), run code (YAML is only read safely) or become markup in the report (no free text).
"""

from __future__ import annotations

import ast
import json
import re
import shlex
import string
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

from conftest import REPO, copy_repo, snakemake, with_changes

TEST_YAML = (REPO / "config/test.yaml").read_text()
TEST_CONFIG = yaml.safe_load(TEST_YAML)
# A file a successful YAML code-execution attack would create.
EXPLOIT_MARK = "PWNED"


def changed(**changes) -> str:
    """config/test.yaml's text with changes given as section__key=value (DELETE removes the key)."""
    return yaml.safe_dump(with_changes(TEST_CONFIG, **changes))


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
    Case(
        "lr-quoted",
        edited("lr: [0.1, 0.5]", 'lr: ["0.1", 0.5]'),
        ("optimizers.sgd.lr[0]", "'0.1'", "allowed: a number > 0", "write 0.1 without quotes"),
    ),
    Case(
        "lr-1e-3-read-as-text",
        edited("lr: [1.0e-3, 1.0e-2]", "lr: [1e-3, 1.0e-2]"),
        ("optimizers.adam.lr[0]", "'1e-3'", "allowed: a number > 0", "write 1.0e-3"),
    ),
    Case(
        "steps-fraction",
        changed(training__steps=10.5),
        ("training.steps", "10.5", "allowed: an integer in [1, 1000000]"),
    ),
    Case(
        "momentum-not-a-list",
        changed(optimizers__sgd__momentum=0.9),
        ("optimizers.sgd.momentum", "0.9", "allowed: a non-empty list, each a number in [0, 1)"),
    ),
    Case(
        "block-word",
        changed(training__block="stack"),
        ("training.block", "'stack'", "allowed: one of line, cell"),
    ),
    Case(
        "section-null",
        changed(training=None),
        ("training", "None", "allowed: a mapping with keys steps, batch_size"),
    ),
    # --- values out of range
    Case(
        "lr-zero",
        changed(optimizers__sgd__lr=[0.0, 0.5]),
        ("optimizers.sgd.lr[0]", "0.0", "allowed: a number > 0"),
    ),
    Case(
        "lr-negative",
        changed(optimizers__adam__lr=[1.0e-3, -0.01]),
        ("optimizers.adam.lr[1]", "-0.01", "allowed: a number > 0"),
    ),
    Case(
        "momentum-one",
        changed(optimizers__sgd__momentum=[1.0]),
        ("optimizers.sgd.momentum[0]", "1.0", "allowed: a number in [0, 1)"),
    ),
    Case(
        "momentum-negative",
        changed(optimizers__adam__momentum=[-0.9]),
        ("optimizers.adam.momentum[0]", "-0.9", "allowed: a number in [0, 1)"),
    ),
    Case(
        "steps-zero",
        changed(training__steps=0),
        ("training.steps", "0", "allowed: an integer in [1, 1000000]"),
    ),
    Case(
        "steps-absurd",
        changed(training__steps=10**9),
        ("training.steps", "1000000000", "allowed: an integer in [1, 1000000]"),
    ),
    Case("seed-negative", changed(seeds=[0, -1]), ("seeds[1]", "-1", "allowed: an integer >= 0")),
    Case(
        "batch-larger-than-data",
        changed(training__batch_size=[None, 1000]),
        (
            "training.batch_size",
            "1000",
            "data.n_train = 64",
            "allowed: null (full batch) or an integer in [1, 63]",
        ),
    ),
    Case(
        "batch-not-a-list",
        changed(training__batch_size=16),
        ("training.batch_size", "16", "allowed: a non-empty list, each an integer >= 1 or null"),
    ),
    Case("batch-empty", changed(training__batch_size=[]), ("training.batch_size", "allowed: a non-empty list")),
    Case("batch-zero", changed(training__batch_size=[None, 0]), ("training.batch_size[1]", "0", ">= 1 or null")),
    Case("batch-fraction", changed(training__batch_size=[16.5]), ("training.batch_size[0]", "16.5", "an integer")),
    Case("batch-twice", changed(training__batch_size=[16, 16]), ("training.batch_size", "16 is listed more than once")),
    Case("budget-above-one", changed(analysis__budgets=[0.5, 1.5]), ("analysis.budgets[1]", "1.5", "(0, 1]")),
    Case("budget-without-one", changed(analysis__budgets=[0.5]), ("analysis.budgets", "lacks 1")),
    Case("curvature-steps-negative", changed(curvature__steps=-5), ("curvature.steps", "-5", "[1, 1000000]")),
    Case(
        "window-reversed",
        changed(analysis__claimed_windows__sgd=[0.3, 0.1]),
        ("analysis.claimed_windows.sgd", "[0.3, 0.1]", "allowed: [low, high] with low < high"),
    ),
    # --- unknown or misspelled keys
    Case(
        "unknown-optimizer",
        changed(optimizers__rmsprop={"lr": [0.1], "momentum": [0.0]}),
        ("optimizers.rmsprop", "rmsprop is not a registered optimizer",
         "allowed: sgd, nesterov, adam, sign, normalized, lion"),
    ),
    Case(
        "nesterov-without-momentum",
        changed(optimizers__nesterov={"lr": [0.1], "momentum": [0.0, 0.9]}),
        ("optimizers.nesterov.momentum", "0 is not allowed for nesterov", "allowed: numbers in (0, 1)"),
    ),
    Case(
        "misspelled-top-level-key",
        changed(seed=[0, 1]),
        ("(top level)", "'seed'", "allowed keys here:", "seeds"),
    ),
    Case(
        "misspelled-nested-key",
        changed(training__stpes=10),
        ("training", "'stpes'", "allowed keys here:", "steps"),
    ),
    Case(
        "misspelled-grid-key",
        changed(optimizers__adam__betas=[0.9]),
        ("optimizers.adam.betas", "adam has no hyperparameter betas", "allowed: lr, momentum, beta2, eps"),
    ),
    Case(
        "hyperparameter-out-of-range",
        changed(optimizers__adam__eps=[0.0]),
        ("optimizers.adam.eps", "0.0 is not allowed", "allowed: a number > 0"),
    ),
    Case(
        "hyperparameter-axis-in-the-grid",
        changed(optimizers__adam__eps=[1.0e-8, 1.0]),
        ("optimizers.adam.eps", "lists 2 values", "allowed: one value", "the epsilon runs"),
    ),
    Case(
        "hyperparameter-not-a-list",
        changed(optimizers__adam__eps=1.0e-8),
        ("optimizers.adam.eps", "1e-08"),
    ),
    # --- empty or repeated lists
    Case(
        "lr-empty",
        changed(optimizers__sgd__lr=[]),
        ("optimizers.sgd.lr", "[]", "allowed: a non-empty list, each a number > 0"),
    ),
    Case(
        "seeds-empty", changed(seeds=[]), ("seeds", "[]", "allowed: a non-empty list, each an integer >= 0")
    ),
    Case(
        "lr-duplicate",
        changed(optimizers__sgd__lr=[0.1, 0.5, 0.1]),
        ("optimizers.sgd.lr", "0.1 is listed more than once", "allowed: each value once"),
    ),
    Case(
        "seeds-duplicate",
        changed(seeds=[0, 1, 0]),
        ("seeds", "0 is listed more than once", "allowed: each value once"),
    ),
    Case(
        "lr-not-exact-in-paths",
        changed(optimizers__sgd__lr=[0.1, 0.5, 0.1234567]),
        (
            "optimizers.sgd.lr",
            "0.1234567",
            "paths would name it 0.123457",
            "allowed: numbers that print exactly",
        ),
    ),
    # --- a grid too large to plan
    Case(
        "grid-too-large",
        changed(max_jobs=2000, optimizers__sgd=HUGE_SGD, training__block="cell"),
        (
            "optimizers",
            "makes 4806 training jobs",  # (2400 SGD + 2 Adam cells) x 2 regimes + 2 curvature cells
            "training.block: cell",
            "max_jobs is 2000",
            "allowed: at most max_jobs jobs",
        ),
    ),
    # --- cells named outside the grid (curvature cells are runs of their own: any registered optimizer)
    Case(
        "curvature-optimizer-not-registered",
        changed(curvature__cells__rmsprop={"lr": [0.1], "momentum": [0.0]}),
        ("curvature.cells.rmsprop", "rmsprop is not a registered optimizer",
         "allowed: sgd, nesterov, adam, sign, normalized, lion"),
    ),
    Case(
        "curvature-optimizer-without-threshold",
        changed(curvature__cells__sign={"lr": [0.1], "momentum": [0.0]}),
        ("curvature.cells.sign", "sign has no stability threshold", "allowed: sgd, nesterov, adam"),
    ),
    Case(
        "reference-cell-not-in-grid",
        changed(analysis__reference__sgd={"lr": 0.3, "momentum": 0.0}),
        ("analysis.reference.sgd.lr", "0.3", "allowed: one of ['0.1', '0.5']"),
    ),
    # --- files Snakemake cannot read. Its message names neither the file nor the line:
    # Snakemake reads --configfile before any code of the workflow runs, so the workflow
    # cannot add to it.
    Case(
        "invalid-yaml",
        edited("steps: 60", "steps: [60"),
        ("Config file is not valid JSON or YAML",),
        ours=False,
    ),
    # Read unsafely, the tag would run a command; read safely, it is refused.
    Case(
        "python-object-tag",
        edited("max_jobs: 10", f'max_jobs: !!python/object/apply:os.system ["touch {EXPLOIT_MARK}"]'),
        ("Config file is not valid JSON or YAML",),
        ours=False,
    ),
    Case(
        "not-a-mapping",
        "- 1\n- 2\n",
        ("Config file must be given as JSON or YAML with keys at top level",),
        ours=False,
    ),
    Case("missing-config-file", None, ("bad.yaml", "No such file or directory"), ours=False),
]


def refuse(case: Case, workdir: Path) -> list[str]:
    """Run the case in its own copy of the repository; what is wrong with the refusal."""
    copy_repo(workdir)
    if case.config is not None:
        (workdir / "bad.yaml").write_text(case.config)
    result = snakemake(workdir, "--cores", "1", "--configfile", "bad.yaml", *case.args)
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


# --- a config cannot inject shell, code or markup ------------------------------------------


def shell_commands() -> dict[str, str]:
    """Each rule's shell command, as Snakemake formats it: {rule file: command}."""
    commands = {}
    for path in sorted((REPO / "workflow/rules").glob("*.smk")):
        # A shell: directive is followed by indented string literals, concatenated.
        for block in re.findall(r"^ +shell:\n((?: {8,}.*\n)+)", path.read_text(), re.MULTILINE):
            commands[path.name] = ast.literal_eval(f"({block})")
    return commands


def test_every_value_in_a_shell_command_is_shell_quoted():
    commands = shell_commands()
    assert len(commands) == len(list((REPO / "workflow/rules").glob("*.smk"))) - 1  # common.smk has none
    for name, command in commands.items():
        fields = [(field, spec) for _, field, spec, _ in string.Formatter().parse(command) if field]
        assert fields, name
        for field, spec in fields:
            # {threads} is the rule's integer; every path and parameter goes through :q.
            assert spec == "q" or field == "threads", f"{name}: {{{field}}} is not quoted with :q"


def test_the_config_json_reaches_the_aggregation_intact_through_the_shell(tmp_path):
    """The one config text that reaches a shell (as JSON: quotes, braces, spaces) is one argument."""
    plan = snakemake(copy_repo(tmp_path), "-n", "-p", "--configfile", "config/test.yaml")
    assert plan.returncode == 0, plan.stderr
    command = re.search(r"\"\$PYTHON\" -m optimizer_dynamics\.aggregate .*", plan.stdout + plan.stderr).group()
    words = shlex.split(command)
    config = json.loads(words[words.index("--config-json") + 1])
    for section in TEST_CONFIG:
        assert config[section] == TEST_CONFIG[section], section
    assert words[-3:] == [">", "results/logs/aggregate.log", "2>&1"]


# yaml.load(...) and friends; each call must be safe_load(_all) or name the SafeLoader.
YAML_LOAD = re.compile(r"yaml\.(\w*load\w*)\s*\(([^)]*)\)")
UNSAFE_LOADER = re.compile(r"\bLoader\s*=\s*(yaml\.)?(Full|Unsafe)?Loader\b")


def unsafe_yaml_loads(text: str) -> list[str]:
    calls = [
        match.group()
        for match in YAML_LOAD.finditer(text)
        if match.group(1) not in ("safe_load", "safe_load_all") and "SafeLoader" not in match.group(2)
    ]
    return calls + [match.group() for match in UNSAFE_LOADER.finditer(text)]


def test_yaml_is_only_ever_loaded_safely():
    """No code of the project reads YAML with a loader that can build Python objects (that
    Snakemake refuses such a config is the python-object-tag case above)."""
    assert unsafe_yaml_loads("yaml.load(f)\nyaml.full_load(f)\nyaml.load(f, Loader=yaml.Loader)") == [
        "yaml.load(f)",
        "yaml.full_load(f)",
        "yaml.load(f, Loader=yaml.Loader)",
        "Loader=yaml.Loader",
    ]
    assert unsafe_yaml_loads("yaml.safe_load(f)\nyaml.load(f, Loader=yaml.SafeLoader)") == []
    sources = [
        path
        for part in ("scripts", "workflow", "report", "tests", "benchmarks")
        for path in (REPO / part).rglob("*")
        # (this file is left out: it spells the unsafe calls as examples)
        if (path.suffix in (".py", ".smk") or path.name == "Snakefile") and path != Path(__file__).resolve()
    ]
    assert len(sources) > 20
    unsafe = [
        f"{path.relative_to(REPO)}: {call}"
        for path in sources
        for call in unsafe_yaml_loads(path.read_text())
    ]
    assert not unsafe


REGISTRY_NAME = "^[a-z][a-z0-9_]*$"  # the schema's pattern of a problem's name: no markup can pass it


def schema_types(node) -> set[str]:
    if isinstance(node, dict):
        declared = node.get("type", [])
        found = set(declared if isinstance(declared, list) else [declared])
        if declared == "string" and node.get("pattern") == REGISTRY_NAME:
            found = {"registry name"}
        return found.union(*(schema_types(child) for child in node.values()))
    if isinstance(node, list):
        return set().union(*(schema_types(child) for child in node))
    return set()


def test_no_config_text_can_reach_the_report():
    """Every config value is a number, null, list, one word of an enum, a registry name (letters,
    digits, underscores: problems) or mapping with fixed keys or keys that must be registry names
    (optimizers, checked before any job): the schema admits no free text, so nothing from a
    config can become markup in the report. (Text in the
    aggregates, config included, is escaped on the page: tests/test_report.py injects markup.)"""
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert schema_types(schema) == {"object", "array", "number", "integer", "null", "registry name"}
    assert schema["properties"]["training"]["properties"]["block"]["enum"] == ["line", "cell"]
