"""One declaration per setting: flags, the flags-to-config step, bounds and resume rules.

A `Setting` is everything sslx knows about one value a user can set: its help, type,
unit, bounds, flag spelling and what `sslx train --resume` may do with it. A config
dataclass declares each field with `SETTING.field(default)` (or `declare(...)` for a
setting of its own); from that one declaration come

- the command-line option (`option`, `options`), with the bounds in its help;
- the flags-to-config step (`build`) and its inverse (`flat`);
- the check of every value (`check`, called by each config's `__post_init__`);
- the resume rules (`resume`: "fixed" values may not change, "free" ones may,
  "movable" ones are data locations that may move, checked by the data fingerprint).

Settings shared by several configs or commands (the seed, the optimiser block, the
RandomResizedCrop parameters) are declared once and bound to a field in each config
that holds them. Torch-free, so building `--help` stays fast.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass
from functools import cache
from pathlib import Path
from typing import Any

import click

from sslx.errors import InputError

FIXED, FREE, MOVABLE = "fixed", "free", "movable"
_KEY = "sslx.setting"

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


@dataclass(frozen=True)
class Setting:
    """One user-settable value. `type` is int, float, str, bool or Path; a bool is a
    `--x/--no-x` switch unless `switch` is False (then a plain `--x` flag)."""

    help: str
    type: type = str
    flag: str | None = None  # None: "--" + the field's name with dashes
    unit: str | None = None  # shown as the option's metavar, e.g. "--size PIXELS"
    low: float | None = None
    high: float | None = None
    open_low: bool = False  # low itself is excluded
    open_high: bool = False
    choices: tuple[str, ...] | None = None
    resume: str = FIXED
    # The flag's value -> the config's value; it must accept its own output, since it also
    # checks stored values. A value that is not its flag's text declares `spell` back.
    parse: Callable[[Any], Any] | None = None
    spell: Callable[[Any], Any] | None = None  # the config's value -> as the flag spells it
    switch: bool = True
    multiple: bool = False

    def __post_init__(self) -> None:
        if self.resume not in (FIXED, FREE, MOVABLE):
            raise ValueError(f"unknown resume rule {self.resume!r}")

    def field(self, default: Any = MISSING, **kwargs: Any) -> Any:
        """A dataclass field holding this setting."""
        if isinstance(default, (list, dict, set)):
            raise TypeError("mutable defaults: use a tuple")
        return dataclasses.field(default=default, metadata={_KEY: self}, **kwargs)

    def flag_for(self, name: str) -> str:
        """The flag's name ("--ten-crop" of a switch declared "--ten-crop/--single-crop")."""
        return (self.flag or "--" + name.replace("_", "-")).split("/")[0]

    def bounds_rule(self) -> str | None:
        """The bounds as --help shows them, e.g. "x > 0", "0 < x <= 1"; None without."""
        lo = None if self.low is None else f"{_num(self.low)} {'<' if self.open_low else '<='} "
        hi = None if self.high is None else f" {'<' if self.open_high else '<='} {_num(self.high)}"
        if lo is None and hi is None:
            return None
        if hi is None:
            return f"x {'>' if self.open_low else '>='} {_num(self.low)}"
        return f"{lo or ''}x{hi}"

    def bounds_text(self) -> str | None:
        """The bounds as an error says them, e.g. "> 0", ">= 1", "in (0, 1]"; None without."""
        if self.low is not None and self.high is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            return f"in {left}{_num(self.low)}, {_num(self.high)}{right}"
        if self.low is not None:
            return f"{'>' if self.open_low else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"{'<' if self.open_high else '<='} {_num(self.high)}"
        return None

    def check(self, name: str, value: Any) -> None:
        """Refuse a value of the wrong type, not finite, or out of bounds (InputError)."""
        if value is None:
            return
        if self.parse is not None:  # it refuses what it cannot make (a stored value too)
            self.parse(value)  # a repeatable flag's: all its values at once
            return
        if self.multiple:
            return
        flag = self.flag_for(name)
        if self.type is bool and not isinstance(value, bool):
            raise InputError(f"{flag} must be true or false (got {value!r})")
        number = self.type in (int, float)
        if number and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InputError(f"{flag} must be a number (got {value!r})")
        if self.type is int and not isinstance(value, int):
            raise InputError(f"{flag} must be a whole number (got {value!r})")
        if self.type is str and not isinstance(value, str):
            raise InputError(f"{flag} must be text (got {value!r})")
        if self.choices is not None and value not in self.choices:
            raise InputError(f"{flag} must be one of {', '.join(self.choices)} (got {value!r})")
        if not number:
            return
        if not math.isfinite(value):
            raise InputError(f"{flag} must be a finite number (got {value})")
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        high_ok = self.high is None or (value < self.high if self.open_high else value <= self.high)
        if not (low_ok and high_ok):
            raise InputError(f"{flag} must be {self.bounds_text()} (got {value})")


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def declare(default: Any = MISSING, **setting: Any) -> Any:
    """A field with a setting of its own: `lr: float = declare(0.01, help=..., low=0)`."""
    return Setting(**setting).field(default)


@dataclass(frozen=True)
class Declared:
    """A declared field of a config tree: its key (the click parameter name), its path
    in the config's dict form ("optim.lr") and its setting."""

    key: str
    path: str
    setting: Setting
    default: Any  # the field's default, or MISSING

    @property
    def flag(self) -> str:
        return self.setting.flag_for(self.key)


def is_config(cls: Any) -> bool:
    return dataclasses.is_dataclass(cls) and isinstance(cls, type)


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _nested(cls: type, f: dataclasses.Field) -> type | None:
    """The config dataclass a field holds (or may hold: `X | None`), if it holds one."""
    hint = _hints(cls).get(f.name)
    for candidate in (hint, *typing.get_args(hint)):
        if is_config(candidate) and _has_settings(candidate):
            return candidate
    return None


@cache
def _has_settings(cls: type) -> bool:
    return any(_KEY in f.metadata or _nested(cls, f) for f in dataclasses.fields(cls))


@cache
def declared(cls: type) -> dict[str, Declared]:
    """Every setting of a config tree by key, in declaration order (nested configs walked).
    Keys are unique across the tree: the flags-to-config step needs that."""
    out: dict[str, Declared] = {}
    for f in dataclasses.fields(cls):
        nested = _nested(cls, f)
        if nested is not None:
            items = [
                Declared(d.key, f"{f.name}.{d.path}", d.setting, d.default)
                for d in declared(nested).values()
            ]
        elif _KEY in f.metadata:
            items = [Declared(f.name, f.name, f.metadata[_KEY], f.default)]
        else:
            continue
        for d in items:
            if d.key in out:
                raise TypeError(f"{cls.__name__}: setting {d.key!r} is declared twice")
            out[d.key] = d
    return out


def check(config: Any) -> None:
    """Check each declared field of `config` itself (nested configs check themselves)."""
    for f in dataclasses.fields(config):
        setting = f.metadata.get(_KEY)
        if setting is not None:
            setting.check(f.name, getattr(config, f.name))


def build(cls: type, values: Mapping[str, Any], fallback: Mapping[str, Any] | None = None) -> Any:
    """A config from flag values by key. A value of None (not given) takes the fallback's
    value (e.g. the method's default), else the field's default; given values go through
    the setting's `parse`. Keys that are not settings of `cls` are ignored, except that a
    plain (undeclared) field takes its value from `values` when present."""
    fallback = fallback or {}
    kwargs = {}
    for f in dataclasses.fields(cls):
        nested = _nested(cls, f)
        setting = f.metadata.get(_KEY)
        if nested is not None:  # built from the same values, unless given whole
            given = values.get(f.name)
            kwargs[f.name] = given if isinstance(given, nested) else build(nested, values, fallback)
        elif setting is not None:
            value = values.get(f.name)
            if value is not None:
                kwargs[f.name] = setting.parse(value) if setting.parse else value
            elif f.name in fallback:
                kwargs[f.name] = fallback[f.name]
        elif f.name in values:
            kwargs[f.name] = values[f.name]
    return cls(**kwargs)


def flat(config: Any) -> dict[str, Any]:
    """The declared values of a config tree by key (the inverse of `build`)."""
    out = {}
    for d in declared(type(config)).values():
        value = config
        for part in d.path.split("."):
            value = getattr(value, part)
        out[d.key] = value
    return out


def locations(config: Any) -> list[tuple[str, Any]]:
    """The data locations a config tree reads (its "movable" settings), as (flag, value),
    an empty path as None: what an output folder must stay apart from."""
    values = flat(config)
    return [
        (d.flag, values[k] or None)
        for k, d in declared(type(config)).items()
        if d.setting.resume == MOVABLE
    ]


def replace(config: Any, changes: Mapping[str, Any]) -> Any:
    """A copy of a config tree with declared values replaced by key."""
    return build(type(config), {**_plain(config), **flat(config), **changes})


def _plain(config: Any) -> dict[str, Any]:
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if _KEY not in f.metadata and _nested(type(config), f) is None
    }


def spelled(setting: Setting, value: Any) -> Any:
    """A value as its flag would spell it (for messages and comparisons with flags)."""
    if setting.spell is not None and value is not None:
        return setting.spell(value)
    return value


class SettingOption(click.Option):
    """A click option made from a `Setting` (tests check that each flag has one)."""

    def __init__(self, *args: Any, setting: Setting, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setting = setting

    def process_value(self, ctx: click.Context, value: Any) -> Any:
        value = super().process_value(ctx, value)
        if self.required and value is None:  # some click versions let an explicit None by
            raise click.MissingParameter(ctx=ctx, param=self)
        self.setting.check(self.name, value)  # bounds and finiteness, before any work
        return value


def option(
    key: str,
    setting: Setting,
    *,
    default: Any = None,
    default_text: str | None = None,
    required: bool = False,
    note: str = "",
    prefix: str = "",
) -> Decorator:
    """The click option of one setting. `default` None means "not given" (the config's
    own default applies; `default_text` says which); `note` and `prefix` add to the help
    what one command means by it."""
    s = setting
    opts = [s.flag_for(key)]
    if s.type is bool and s.switch:
        opts = [s.flag if s.flag and "/" in s.flag else f"{opts[0]}/--no-{opts[0][2:]}"]
    kwargs: dict[str, Any] = {"help": _help(s, note, prefix, default_text)}
    if s.type is bool and not s.switch:
        kwargs["is_flag"] = True
        if default:
            kwargs["default"] = True
    else:
        kwargs["type"] = _click_type(s)
        if not required:
            kwargs["default"] = default
        if default_text is not None or default in (None, "") or callable(default):
            kwargs["show_default"] = False
    if s.unit and s.type is not bool:
        kwargs["metavar"] = s.unit
    return click.option(
        *opts, key, cls=SettingOption, setting=s, required=required, multiple=s.multiple, **kwargs
    )


class _PathType(click.Path):
    """A path; an empty one is refused (Path("") would silently mean the current folder)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            self.fail("an empty path", param, ctx)
        return super().convert(value, param, ctx)


def _click_type(s: Setting) -> Any:
    if s.choices is not None:
        return click.Choice(s.choices)
    if s.type is Path:
        return _PathType(path_type=Path)
    return s.type


def _help(s: Setting, note: str, prefix: str, default_text: str | None) -> str:
    text = " ".join(t for t in (prefix, s.help, note) if t)
    extras = [s.bounds_rule()] if s.bounds_rule() else []
    if default_text is not None:
        extras.append(f"default: {default_text}")
    return text + (f"  [{'; '.join(extras)}]" if extras else "")


def options(
    cls: type,
    *,
    defaults: Mapping[str, Any] | None = None,
    default_text: Mapping[str, str] | None = None,
    only: tuple[str, ...] | None = None,
    notes: Mapping[str, str] | None = None,
    required: tuple[str, ...] = (),
    prefix: str = "",
) -> Decorator:
    """The options of every setting of a config tree (or of `only` those keys), in
    declaration order. Defaults are the fields' own unless `defaults` overrides them
    (None: not given, the config decides)."""
    items = [d for d in declared(cls).values() if (only is None or d.key in only)]
    defaults, default_text, notes = defaults or {}, default_text or {}, notes or {}

    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        for d in reversed(items):  # click lists options in the order they are applied, reversed
            default = defaults.get(d.key, None if d.default is MISSING else d.default)
            command = option(
                d.key,
                d.setting,
                default=spelled(d.setting, default),
                default_text=default_text.get(d.key),
                required=d.key in required,
                note=notes.get(d.key, ""),
                prefix=prefix,
            )(command)
        return command

    return apply
