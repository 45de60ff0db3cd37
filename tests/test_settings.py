"""One declaration per setting: bounds, the flags-to-config step and its inverse, options."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sslx import settings
from sslx.errors import InputError
from sslx.settings import FREE, Setting, declare

RATE = Setting("A rate.", float, low=0, open_low=True)
SHARED = Setting("Shared by two configs.", int, low=1, high=8)


@dataclass(frozen=True)
class Inner:
    rate: float = RATE.field(0.5)
    count: int = SHARED.field(2)

    def __post_init__(self) -> None:
        settings.check(self)


def _steps(text: str | tuple[int, ...]) -> tuple[int, ...]:
    """A parse accepts its own output too: `check` passes stored values through it."""
    return text if isinstance(text, tuple) else tuple(int(x) for x in text.split(",") if x)


def _spell(steps: tuple[int, ...]) -> str:
    return ",".join(map(str, steps))


@dataclass(frozen=True)
class Outer:
    name: str = declare("a", help="A name.", choices=("a", "b"))
    inner: Inner = field(default_factory=Inner)
    steps: tuple[int, ...] = declare((), help="Steps.", parse=_steps, spell=_spell)
    where: str = declare("", help="A path.", type=Path, parse=str, resume=FREE)
    plain: int = 7  # not a setting

    def __post_init__(self) -> None:
        settings.check(self)


@pytest.mark.parametrize(
    ("setting", "help_rule", "error_rule"),
    [
        (RATE, "x > 0", "> 0"),
        (SHARED, "1 <= x <= 8", "in [1, 8]"),
        (Setting("p", float, low=0, high=1, open_high=True), "0 <= x < 1", "in [0, 1)"),
        (Setting("t", float, high=2.5), "x <= 2.5", "<= 2.5"),
        (Setting("u"), None, None),
    ],
)
def test_bounds_read_the_same_in_help_and_errors(setting, help_rule, error_rule):
    assert setting.bounds_rule() == help_rule
    assert setting.bounds_text() == error_rule


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "--rate must be a finite number (got nan)"),
        (float("inf"), "--rate must be a finite number (got inf)"),
        (0.0, "--rate must be > 0 (got 0.0)"),
        ("1", "--rate must be a number (got '1')"),
        (True, "--rate must be a number (got True)"),
    ],
)
def test_check_refuses_bad_values_naming_the_flag(value, message):
    with pytest.raises(InputError) as caught:
        Inner(rate=value)
    assert str(caught.value) == message


def test_whole_numbers_choices_and_parsed_values_are_checked():
    with pytest.raises(InputError, match="--count must be a whole number"):
        Inner(count=2.0)
    with pytest.raises(InputError, match="--count must be in \\[1, 8\\] \\(got 9\\)"):
        Inner(count=9)
    with pytest.raises(InputError, match="--name must be one of a, b"):
        Outer(name="c")
    with pytest.raises(ValueError):  # a stored value goes through `parse` as well
        Outer(steps="1,x")


def test_declared_walks_nested_configs_by_key_and_path():
    declared = settings.declared(Outer)
    assert list(declared) == ["name", "rate", "count", "steps", "where"]
    assert declared["rate"].path == "inner.rate" and declared["rate"].setting is RATE
    assert declared["where"].setting.resume == FREE


def test_a_key_declared_twice_in_one_tree_is_a_bug():
    @dataclass(frozen=True)
    class Twice:
        inner: Inner = field(default_factory=Inner)
        count: int = SHARED.field(3)

    with pytest.raises(TypeError, match="'count' is declared twice"):
        settings.declared(Twice)


def test_build_flat_and_replace_round_trip():
    built = settings.build(Outer, {"rate": 2.0, "steps": "1,3", "count": None}, {"count": 5})
    assert built == Outer(inner=Inner(rate=2.0, count=5), steps=(1, 3))
    assert settings.flat(built) == {
        "name": "a",
        "rate": 2.0,
        "count": 5,
        "steps": (1, 3),
        "where": "",
    }
    assert settings.build(Outer, settings.flat(built)) == built  # the inverse of flat
    changed = settings.replace(built, {"count": 4, "plain": 9})
    assert changed.inner.count == 4 and changed.plain == 9 and changed.steps == (1, 3)
    assert settings.spelled(settings.declared(Outer)["steps"].setting, (1, 3)) == "1,3"


def _command(**kwargs):
    @click.command()
    @settings.options(Outer, **kwargs)
    def command(**flags):
        click.echo(repr(sorted(flags.items())))

    return command


def test_options_are_made_from_the_declarations():
    command = _command(defaults={"rate": None}, default_text={"rate": "the method's"})
    params = {p.name: p for p in command.params}
    assert all(isinstance(p, settings.SettingOption) for p in params.values())
    assert params["rate"].opts == ["--rate"] and params["rate"].default is None
    assert "[x > 0; default: the method's]" in params["rate"].help
    assert params["count"].default == 2 and "1 <= x <= 8" in params["count"].help
    assert isinstance(params["name"].type, click.Choice)
    assert "plain" not in params  # not a setting, not a flag
    result = CliRunner().invoke(command, ["--rate", "nan"])
    assert result.exit_code != 0 and "--rate must be a finite number" in str(result.exception)
    result = CliRunner().invoke(command, ["--where", ""])
    assert result.exit_code == 2 and "an empty path" in result.output


def test_a_required_option_holds_even_with_an_explicit_none_default():
    command = _command(required=("where",))
    result = CliRunner().invoke(command, [])
    assert result.exit_code == 2 and "Missing option '--where'" in result.output


def test_a_stored_config_is_checked_like_the_flags():
    """A tampered config.yaml is refused by the same declarations, naming the flag."""
    from sslx.train.config import TrainConfig

    stored = TrainConfig.for_method("rotnet", shards="S").to_dict()
    for path, value, message in [
        (("freeze",), ["conv9"], "--freeze: unknown layer"),
        (("optim", "lr"), "0.1", "--lr must be a number"),
        (("optim", "lr_milestones"), [1.5], "--lr-milestones must be"),
        (("seed",), -1, "--seed must be >= 0"),
        (("method_options",), {"clusters": 5}, "clusters: not options of rotnet"),
    ]:
        data = {**stored, "optim": dict(stored["optim"])}
        target = data if len(path) == 1 else data[path[0]]
        target[path[-1]] = value
        with pytest.raises(InputError, match=message):
            TrainConfig.from_dict(data)
