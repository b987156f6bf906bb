"""SECURITY.md stays true: the tests it names exist, and its defaults are the real ones.

* Every ``tests/...py::test_name`` or ``fuzz/...py::test_name`` reference names a file
  that exists and defines that test function; a ``[case]`` suffix must be a quoted case
  id in that file (the keys of the parametrised dicts).  Renaming a test breaks this.
* Every row of the "option | default | CLI flag" table names a ``Config`` field whose
  default is the one written (a Python expression), and flags the CLI really has.
* Every row of the "form() argument | default" table matches the default of that
  keyword argument of ``Request.form``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from httpy.cli import build_parser
from httpy.core.config import Config
from httpy.framework.request import Request

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "SECURITY.md").read_text(encoding="utf-8")

REFERENCE = re.compile(r"\b((?:tests|fuzz)/[\w/]+\.py)::(\w+)(?:\[([^\]]+)\])?")
PATH = re.compile(r"`((?:tests|fuzz)/[\w/]+\.py)`")


def references() -> list[tuple[str, str, str | None]]:
    return sorted(set(REFERENCE.findall(DOC)), key=str)


def table(first_header: str) -> list[dict[str, str]]:
    """The rows of the markdown table whose header row starts with ``first_header``."""
    lines = DOC.splitlines()
    for at, line in enumerate(lines):
        cells = _cells(line)
        if cells and cells[0] == first_header:
            header = cells
            rows = []
            for row in lines[at + 2 :]:  # skip the | --- | line
                if not row.startswith("|"):
                    break
                rows.append(dict(zip(header, _cells(row), strict=True)))
            return rows
    raise AssertionError(f"SECURITY.md has no table starting with {first_header!r}")


def _cells(line: str) -> list[str]:
    if not line.startswith("|"):
        return []
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def code(cell: str) -> str:
    """The text of a cell that is one ``code span``."""
    match = re.fullmatch(r"`([^`]+)`", cell)
    assert match is not None, f"expected one `code` span, got {cell!r}"
    return match[1]


_ALLOWED = (
    ast.Expression,
    ast.Constant,
    ast.Tuple,
    ast.Load,
    ast.BinOp,
    ast.Mult,
    ast.UnaryOp,
    ast.USub,
)


def literal(text: str) -> Any:
    """A default as written in the doc: a literal, a tuple of them, or a product."""
    tree = ast.parse(text, mode="eval")
    for node in ast.walk(tree):
        assert isinstance(node, _ALLOWED), f"unsupported default expression {text!r}"
    return eval(compile(tree, "<SECURITY.md>", "eval"), {"__builtins__": {}})


def test_the_doc_names_many_tests() -> None:
    # A guard on the pattern itself: if it stopped matching, the checks below would pass
    # vacuously.
    assert len(references()) > 100
    assert len({path for path, _, _ in references()}) > 20


@pytest.mark.parametrize(("path", "name", "case"), references())
def test_referenced_test_exists(path: str, name: str, case: str) -> None:
    file = ROOT / path
    assert file.is_file(), f"SECURITY.md names {path}, which does not exist"
    source = file.read_text(encoding="utf-8")
    definition = re.compile(rf"^\s*(?:async\s+)?def\s+{name}\s*\(", re.MULTILINE)
    assert definition.search(source), f"{path} defines no {name}"
    if case:
        assert f'"{case}"' in source or f"'{case}'" in source, f"{path} has no case {case!r}"


def test_every_named_test_file_exists() -> None:
    for path in set(PATH.findall(DOC)):
        assert (ROOT / path).is_file(), f"SECURITY.md names {path}, which does not exist"


def test_option_defaults_and_flags_are_the_real_ones() -> None:
    defaults = {field.name: field.default for field in dataclasses.fields(Config)}
    flags = set(build_parser()._option_string_actions)
    rows = table("option")
    assert len(rows) > 30
    for row in rows:
        option = code(row["option"])
        assert option in defaults, f"Config has no option {option!r}"
        written = literal(code(row["default"]))
        assert written == defaults[option], (option, written, defaults[option])
        for flag in re.findall(r"`(--[\w-]+)`", row["CLI flag"]):
            assert flag in flags, f"the command line has no {flag} (row {option})"
        if row["CLI flag"] != "—":
            assert re.findall(r"`(--[\w-]+)`", row["CLI flag"]), row


def test_form_limits_are_the_real_ones() -> None:
    parameters = inspect.signature(Request.form).parameters
    rows = table("form() argument")
    assert {code(row["form() argument"]) for row in rows} == set(parameters) - {"self"}
    for row in rows:
        name = code(row["form() argument"])
        assert literal(code(row["default"])) == parameters[name].default, name
