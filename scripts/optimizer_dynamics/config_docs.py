"""The key tables of config/README.md, generated from the workflow's config schema: the one home
of every key's meaning (`description`), allowed values (the schema's types and bounds, in the
config checks' words, and `x-allowed` for what the checks add), default, and the reason for it
(`x-why`). Where config/config.yaml sets another value, the table names it too.

    python -m optimizer_dynamics.config_docs           # rewrite the tables in config/README.md
    python -m optimizer_dynamics.config_docs --check   # exit 1 naming the stale tables

A table stands between `<!-- keys: SECTION [SECTION ...] -->` and `<!-- /keys -->`: one row per
key of each named section (nested sections flattened with dots), or the key itself when it is
not a section.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

from optimizer_dynamics.checks import allowed

REPO = Path(__file__).resolve().parents[2]
SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
CONFIG = REPO / "config/config.yaml"
README = REPO / "config/README.md"
TABLE = re.compile(r"(<!-- keys: (?P<sections>[\w ]+) -->\n)(?P<table>.*?)(<!-- /keys -->)", re.DOTALL)
HEADER = "| key | meaning | allowed | default | why the default |\n| --- | --- | --- | --- | --- |\n"


def resolve(node: dict, schema: dict) -> dict:
    """The node with its $ref (#/$defs/...) filled in; its own keys win."""
    if "$ref" not in node:
        return node
    target = schema
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def flow(value) -> str:
    """A value as one would write it in the YAML: null, [null, 64], {lr: 0.1, momentum: 0}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ", ".join(map(flow, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {flow(item)}" for key, item in value.items()) + "}"
    return str(value)


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def rows(name: str, node: dict, schema: dict, study, inherited=None) -> list[str]:
    """One table row per key under node (the leaves of its inline sections; a $ref'd type such as
    a cell is one value), name the key's dotted path; inherited: the default its parent's
    default gives it."""
    if "properties" in node:
        result = []
        defaults = node.get("default", inherited) or {}
        for key, child in node["properties"].items():
            result += rows(f"{name}.{key}" if name else key, child, schema,
                           study.get(key) if isinstance(study, dict) else None, defaults.get(key))
        return result
    node = resolve(node, schema)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict) and "$ref" in extra:  # a mapping keyed by optimizer names
        name, words = f"{name}.<optimizer>", f"for each optimizer of the registry, {allowed(resolve(extra, schema))}"
    else:
        words = allowed(node)
    if node.get("x-allowed"):
        words += f"; {node['x-allowed']}"
    default = node.get("default", inherited)
    default_text = "required" if default is None else f"`{flow(default)}`"
    if study is not None and study != default:
        default_text += f" (config.yaml: `{flow(study)}`)"
    return [f"| `{name}` | {cell(node.get('description', ''))} | {cell(words)} | {default_text} | "
            f"{cell(node.get('x-why', ''))} |"]


def table(sections: list[str], schema: dict, study: dict) -> str:
    lines = []
    for section in sections:  # keys named in full when a table holds several sections
        node = schema["properties"][section]
        prefix = section if len(sections) > 1 or "properties" not in node else ""
        lines += rows(prefix, node, schema, study.get(section))
    return HEADER + "\n".join(lines) + "\n"


def generate(text: str, schema: dict, study: dict) -> str:
    return TABLE.sub(lambda match: match.group(1) + table(match.group("sections").split(), schema, study)
                     + match.group(4), text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the tables are stale; write nothing")
    args = parser.parse_args(argv)
    schema, study = yaml.safe_load(SCHEMA.read_text()), yaml.safe_load(CONFIG.read_text())
    text = README.read_text()
    fresh = generate(text, schema, study)
    if args.check:
        if fresh != text:
            sys.exit(f"{README} has stale key tables: run python -m optimizer_dynamics.config_docs")
        return
    README.write_text(fresh)


if __name__ == "__main__":
    main()
