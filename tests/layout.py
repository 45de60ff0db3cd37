"""Where sslx's code lies, read from pyproject.toml's package list (what an install ships):
the root modules and one folder per package. Import it after
`sys.path.insert(0, str(Path(__file__).parent))`, like tests/doc_recipes.py."""

from __future__ import annotations

from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def package_places() -> list[str]:
    """The root modules and the top folders of the `sslx` package, relative to the repo."""
    setup = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = sorted({name.split(".")[1] for name in setup["packages"] if name != "sslx"})
    modules = sorted(p.name for p in REPO.glob("*.py"))
    return [*modules, *folders]


def package_files() -> list[Path]:
    out: list[Path] = []
    for place in package_places():
        path = REPO / place
        out += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return out
