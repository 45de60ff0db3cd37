"""Data flows one way: shared -> datagen -> train -> probe. No layer imports a later one;
probe reads train only through its contract (the checkpoint, the model, the method specs);
generic training code reaches a method only through the registry, and no method another.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = ["atomic.py", "errors.py", "options.py", "seeds.py", "settings.py", "common"]
STAGES = ("sslx.datagen", "sslx.train", "sslx.probe", "sslx.cli")
LATER = {
    **{path: STAGES for path in SHARED},
    "datagen": ("sslx.train", "sslx.probe", "sslx.cli"),
    "train": ("sslx.probe", "sslx.cli"),
    "probe": ("sslx.cli",),
}
# What probe may read of train: the contract between the stages (docs/checkpoints.md).
TRAIN_CONTRACT = (
    "sslx.train.alexnet",
    "sslx.train.backbone",
    "sslx.train.resnet",
    "sslx.train.model",
    "sslx.train.checkpoint",
    "sslx.train.methods",
    "sslx.train.taps",  # the per-tap pooling: the probe's and the training monitor's
)
METHODS = REPO / "train" / "methods"


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def sources(place: str) -> list[Path]:
    path = REPO / place
    return [path] if path.is_file() else sorted(path.rglob("*.py"))


def _bad(files: list[Path], forbidden) -> list[str]:
    return [
        f"{path.relative_to(REPO)} imports {name}"
        for path in files
        for name in imported_modules(path)
        if forbidden(name)
    ]


@pytest.mark.parametrize("place", sorted(LATER))
def test_no_layer_imports_a_later_one(place):
    later = LATER[place]
    assert not _bad(sources(place), lambda name: name.startswith(later))


def test_probe_reads_train_only_through_its_contract():
    def outside(name: str) -> bool:
        return name.startswith("sslx.train") and not name.startswith(TRAIN_CONTRACT)

    assert not _bad(sources("probe"), outside)
    # ...and of the methods, their torch-free registry and specs only.
    assert not _bad(
        sources("probe"), lambda n: n.startswith("sslx.train.methods.") and not n.endswith(".spec")
    )


def test_generic_training_code_reaches_methods_only_through_the_registry():
    generic = [p for p in sorted((REPO / "train").glob("*.py"))] + sources("cli.py")
    own = ("sslx.train.methods.base", "sslx.train.methods.spec")

    def one_method(name: str) -> bool:
        return name.startswith("sslx.train.methods.") and not name.startswith(own)

    assert not _bad(generic, one_method)


@pytest.mark.parametrize(
    "method", sorted(p.name for p in METHODS.iterdir() if p.is_dir() and p.name != "__pycache__")
)
def test_a_method_imports_no_other_method(method):
    others = tuple(
        f"sslx.train.methods.{p.name}" for p in METHODS.iterdir() if p.is_dir() and p.name != method
    )
    assert not _bad(sources(f"train/methods/{method}"), lambda name: name.startswith(others))
