"""docs/errors.md: every test its tables name exists, so each row stays backed by a test."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_test_named_in_docs_errors_exists():
    text = (ROOT / "docs" / "errors.md").read_text()
    named = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text))
    assert len(named) >= 20
    missing = []
    for path, name in sorted(named):
        file = ROOT / path
        tree = ast.parse(file.read_text()) if file.is_file() else ast.Module(body=[], type_ignores=[])
        if name not in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}:
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/errors.md names tests that do not exist: {missing}"
