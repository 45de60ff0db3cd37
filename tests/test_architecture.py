"""docs/architecture.md stays true: each concern in its one place, every flag declared
once, generic code naming no method's options, files under 400 lines."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import click
import pytest

from sslx import settings
from sslx.cli import cli
from sslx.train.methods import SPECS

sys.path.insert(0, str(Path(__file__).parent))
from layout import REPO, package_files

# One flag name, two settings: generate's patch side and the model's input size.
SAME_FLAG_OTHER_MEANING = {"--size"}
# Public names defined twice on purpose: a command and the function it runs; two kinds of
# uniforms (a patch's, by sample index; a stream's, by key).
DEFINED_TWICE = {"generate", "train", "uniforms"}


def leaf_commands() -> dict[str, click.Command]:
    out = {}

    def walk(group: click.Group, ctx: click.Context, prefix: str) -> None:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            with click.Context(command, info_name=name, parent=ctx) as sub:
                if isinstance(command, click.Group):
                    walk(command, sub, f"{prefix}{name} ")
                else:
                    out[prefix + name] = command

    with click.Context(cli, info_name="sslx") as ctx:
        walk(cli, ctx, "")
    return out


def test_every_flag_is_made_from_one_declaration():
    behind: dict[str, set[int]] = {}
    for name, command in leaf_commands().items():
        for param in command.params:
            if isinstance(param, click.Argument):
                continue
            assert isinstance(param, settings.SettingOption), f"sslx {name} {param.opts}"
            assert param.help and not param.help.startswith(" "), f"sslx {name} {param.opts}"
            behind.setdefault(param.opts[0], set()).add(id(param.setting))
    twice = {flag for flag, ids in behind.items() if len(ids) > 1}
    assert twice == SAME_FLAG_OTHER_MEANING


def _calls(path: Path) -> list[str]:
    """Dotted names of everything called or referenced in a file (`cv2.imdecode`, ...)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            parts, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                parts.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name):
                parts.append(value.id)
            names.append(".".join(reversed(parts)))
        elif isinstance(node, ast.Name):
            names.append(node.id)
    return names


ONE_PLACE = {
    "torch.cuda.is_available": {"common/device.py"},  # device choice
    "os.replace": {"atomic.py"},  # replacing a file on disk
    "np.random.SeedSequence": {"seeds.py"},  # the seed scheme
    "cv2.imdecode": {"common/crops.py"},  # decoding a training or labelled image
    "MANIFEST_NAME": {"datagen/shards.py"},  # reading and writing manifests
    "kmeans_faiss": {"common/kmeans.py"},  # the k-means dispatch (DeepCluster, probe)
    "kmeans_torch": {"common/kmeans.py"},
    "click.option": {"settings.py"},  # command-line options, made from declarations
    "random_resized_crop": {"common/sampling.py", "common/crops.py", "datagen/sampling.py"},
    "epoch_loader": {"train/batches.py", "train/loop.py", "train/evaluation.py"},
    "DataLoader": {"train/batches.py", "train/loop.py", "probe/features.py"},
}


@pytest.mark.parametrize("name", sorted(ONE_PLACE))
def test_each_concern_lives_in_its_one_place(name):
    found = {str(p.relative_to(REPO)) for p in package_files() if name in _calls(p)}
    assert found <= ONE_PLACE[name], f"{name} is also used in {sorted(found - ONE_PLACE[name])}"
    assert found, f"{name} is used nowhere: update ONE_PLACE and docs/architecture.md"


def test_every_public_name_is_defined_once():
    where: dict[str, list[str]] = {}
    for path in package_files():
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                where.setdefault(node.name, []).append(str(path.relative_to(REPO)))
    assert {n for n, files in where.items() if len(files) > 1} == DEFINED_TWICE


def test_generic_training_code_names_no_methods_options():
    keys = {k for spec in SPECS.values() for k in settings.declared(spec.options)}
    for path in [*sorted((REPO / "train").glob("*.py")), REPO / "cli.py"]:
        named = {
            value
            for node in ast.walk(ast.parse(path.read_text()))
            for value in (getattr(node, "attr", None), getattr(node, "value", None))
            if isinstance(value, str) and value in keys
        }
        assert not named, f"{path.relative_to(REPO)} names {sorted(named)}"


def test_files_stay_under_400_lines():
    everything = [*package_files(), *REPO.glob("tests/**/*.py"), *REPO.glob("benchmarks/*.py")]
    long = {
        str(p.relative_to(REPO)): n
        for p in everything
        if (n := len(p.read_text().splitlines())) >= 400
    }
    assert not long


def test_the_architecture_page_names_real_places():
    """Every `path` and `path` `name` pair the page's tables give exists."""
    text = (REPO / "docs" / "architecture.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    checked = 0
    for row in rows:
        for path, names in re.findall(r"`([\w/]+\.py)`((?: `\w+`)*)", row):
            assert (REPO / path).is_file(), path
            source = (REPO / path).read_text()
            for name in re.findall(r"`(\w+)`", names):
                assert re.search(rf"^(class|def) {name}\b|^{name} = ", source, re.M), (path, name)
            checked += 1
    assert checked > 20
