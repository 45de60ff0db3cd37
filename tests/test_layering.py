"""Data flows one way: datagen -> train -> probe. No stage imports a later one."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LATER = {"datagen": ("sslx.train", "sslx.probe"), "train": ("sslx.probe",)}


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("stage", sorted(LATER))
def test_no_stage_imports_a_later_one(stage):
    bad = [
        f"{path.relative_to(REPO)} imports {name}"
        for path in sorted((REPO / stage).rglob("*.py"))
        for name in imported_modules(path)
        if name.startswith(LATER[stage])
    ]
    assert not bad, "; ".join(bad)
