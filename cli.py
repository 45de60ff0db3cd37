"""The `sslx` command line. Each stage is one subcommand; see `sslx COMMAND --help`."""

from __future__ import annotations

import errno
import importlib
import signal
import sys
from pathlib import Path
from typing import ClassVar

import click

from sslx import settings
from sslx.common.device import usable_cores
from sslx.datagen.config import PRESETS, SWITCH, AugmentConfig, GenerateConfig
from sslx.errors import (
    InputError,
    TrainingDiverged,
    check_apart,
    check_out_apart,
    first_line,
    worker_message,
)
from sslx.options import OUT, QUIET, WORKERS
from sslx.settings import Setting


class LazyGroup(click.Group):
    """Subcommands imported on first use, so `sslx generate` does not pay for torch."""

    lazy: ClassVar[dict[str, str]] = {
        "train": "sslx.train.command:train",
        "probe": "sslx.probe.command:probe",
        "viz": "sslx.probe.command:viz",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attr = self.lazy[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@click.version_option(package_name="sslx")
def cli() -> None:
    """Learn visual features from a single image (Asano et al., ICLR 2020)."""


IMAGES = Setting(
    "Source photo, or a folder of photos. Repeat for several sources; patches are spread "
    "evenly over them.",
    Path,
    flag="--image",
    unit="PATH",
    multiple=True,
)
PART = Setting(
    "Generate only part i of k (0 <= i < k): every k-th shard starting at i. The parts "
    "together equal one whole run.",
    str,
    unit="I/K",
)
PRESET = Setting(
    "A row of the paper's augmentation ablation, or 'released': the recipe of the authors' "
    "released generator (docs/generate.md); the switches below override it.",
    str,
    choices=tuple(PRESETS),
)
PREVIEW = Setting(
    "Also write a contact sheet of the first 64 patches here: .jpg at full size, .png with "
    "tiles shrunk to 128 px.",
    Path,
    unit="FILE",
)


@cli.command()
@settings.option("images", IMAGES, default_text="the built-in coffee-cup photo")
@settings.option(
    "out",
    OUT,
    required=True,
    note="The folder for the shards and manifest.json (empty, or a resume).",
)
@settings.option(
    "workers",
    WORKERS,
    default=usable_cores,
    default_text="all cores",
    note="Here: processes that render patches.",
)
@settings.option("part", PART, default="0/1")
@settings.option("preset", PRESET, default="all")
@settings.options(
    GenerateConfig,
    defaults={**dict.fromkeys(SWITCH), "crop_scale_min": None, "rotation_degrees": None},
    default_text={
        **dict.fromkeys(SWITCH, "the preset's"),
        "crop_scale_min": "1e-4; released: 1/500 of the initial square",
        "rotation_degrees": "35; released: 30",
    },
    notes={"seed": "Here: patch i depends only on (seed, i)."},
)
@settings.option("preview", PREVIEW)
@settings.option("quiet", QUIET)
def generate(images, out, workers, part, preset, preview, quiet, **values) -> None:
    """Expand source photos into augmented patches stored as WebDataset tar shards."""
    from sslx.datagen import generate
    from sslx.datagen.shards import parse_part
    from sslx.datagen.sources import default_image

    folders = [image for image in images if Path(image).is_dir()]
    check_out_apart(out, [("--image", image) for image in folders])
    for image in folders:  # a preview among the photos would be a source on the next run
        check_apart(("--preview", preview), ("--image", image), "it would become a source photo")
    switches = {k: values[k] for k in settings.declared(AugmentConfig)}
    augment = AugmentConfig.from_preset(preset, **switches)
    config = settings.build(GenerateConfig, {**values, "augment": augment})
    report = generate(
        config,
        list(images) or [default_image()],
        out,
        workers=workers,
        part=parse_part(part),
        preview=preview,
        progress=not quiet,
    )
    rate = report.samples_written / report.seconds if report.seconds > 0 else 0.0
    click.echo(
        f"wrote {len(report.shards_written)} shard(s), {report.samples_written} patches "
        f"in {report.seconds:.1f} s ({rate:.0f} patches/s) to {report.out}",
        err=True,
    )
    if preview is not None:
        click.echo(f"look: {preview} shows the first 64 patches, 8 per row", err=True)
    if report.complete:
        click.echo(
            f"dataset complete: {report.num_shards} shards, {report.out / 'manifest.json'}",
            err=True,
        )
    else:
        click.echo(
            "this part is done; manifest.json is written once every part has finished "
            "(or rerun without --part)",
            err=True,
        )


# click >= 8.2 raises this for a bare subcommand; 8.1 prints the help itself.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main(argv: list[str] | None = None) -> int:
    """Entry point. Exit codes: 0 done, 2 bad input, 3 training diverged, 130 interrupted;
    bad input and divergence are one line on stderr, never a traceback."""
    # SIGTERM (a scheduler, `kill`) ends a command as Ctrl-C does: cleanly, with the line
    # that says how to continue; `sslx train` installs its own handler (stop.py).
    try:
        previous = signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # called from a thread other than the main one: signals stay as they are
        previous = None
    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        code = cli.main(args=argv, prog_name="sslx", standalone_mode=False)
    except (InputError, TrainingDiverged) as e:
        click.echo(f"sslx: error: {e}", err=True)
        return e.exit_code
    except _NO_ARGS_IS_HELP as e:
        click.echo(e.ctx.get_help() if e.ctx is not None else "see sslx --help", err=True)
        return 2
    except click.UsageError as e:
        message = e.format_message().replace("\n", " ")
        if isinstance(e, click.MissingParameter) and isinstance(e.param, click.Option):
            message = f"Missing option '{max(e.param.opts, key=len)}'."  # as click 8.2+ says
        command = e.ctx.command_path if e.ctx is not None else "sslx"  # e.g. sslx viz filters
        click.echo(f"{command}: error: {message}", err=True)
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except OSError as e:  # a read-only, full or missing place: the user's to fix
        click.echo(f"sslx: error: {_os_error_text(e)}", err=True)
        return InputError.exit_code
    except click.Abort as e:
        if isinstance(e.__cause__, EOFError):  # click turns EOFError into Abort: a file ended
            click.echo(f"sslx: error: a file ended early (truncated?): {e.__cause__}", err=True)
            return InputError.exit_code
        click.echo(_interrupted(argv), err=True)
        return 130
    except KeyboardInterrupt:
        click.echo(_interrupted(argv), err=True)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return code if isinstance(code, int) else 0


def _terminated(signum, frame) -> None:
    raise KeyboardInterrupt


# How each command continues after an interruption (docs/errors.md, "Resuming").
_CONTINUE = {
    "generate": "finished shards are kept; rerun the same command to continue",
    "train": "continue from the last checkpoint with: sslx train --out RUN --resume",
    "probe": "rerun the same command to continue from each probe's last finished epoch",
}


def _interrupted(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    command = next((a for a in args if not a.startswith("-")), "")
    hint = _CONTINUE.get(command)
    return f"sslx: interrupted; {hint}" if hint else "sslx: interrupted"


def _os_error_text(e: OSError) -> str:
    path = e.filename if e.filename is not None else "a file"
    reason = e.strerror or first_line(OSError(worker_message(str(e))))  # a worker's, too
    if e.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM):
        return f"cannot write {path}: {reason}"
    return f"{path}: {reason}"


if __name__ == "__main__":
    sys.exit(main())
