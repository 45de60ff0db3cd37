"""The `sslx` command line. Each stage is one subcommand; see `sslx COMMAND --help`."""

from __future__ import annotations

import errno
import importlib
import sys
from pathlib import Path
from typing import ClassVar

import click

from sslx.errors import InputError, TrainingDiverged, check_out_apart, first_line
from sslx.options import out_option, quiet_option, seed_option, usable_cores, workers_option


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


@cli.command()
@click.option(
    "--image",
    "images",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Source photo, or a folder of photos. Repeat for several sources; patches "
    "are spread evenly over them. Default: the built-in Hubble Deep Field.",
)
@click.option("--n", "n", type=int, default=1_000_000, help="Number of patches to generate.")
@out_option("Output folder for the shards and manifest.json (empty, or a resume).", required=True)
@click.option("--size", type=int, default=256, help="Patch side in pixels.")
@seed_option("Seed; patch i depends only on (seed, i).")
@click.option("--shard-size", type=int, default=5000, help="Patches per tar shard.")
@click.option("--jpeg-quality", type=int, default=90, help="JPEG quality of stored patches.")
@workers_option(
    "Worker processes. The output is identical for any value.  [default: all cores]",
    default=usable_cores,
    show_default=False,
)
@click.option(
    "--part",
    default="0/1",
    help="Generate only part i of k (0 <= i < k): every k-th shard starting at i. "
    "The parts together equal one whole run.",
)
@click.option(
    "--preset",
    type=click.Choice(
        ["none", "jitter", "rotation", "scale", "rot+jitter", "rot+scale", "jitter+scale", "all",
         "released"]
    ),
    default="all",
    help="A row of the paper's augmentation ablation, or 'released': the recipe of the "
    "authors' released generator (docs/generate.md); the switches below override it.",
)
@click.option(
    "--scale/--no-scale",
    default=None,
    help="Random scale crops; off: fixed --size windows at native resolution.",
)
@click.option("--rotation/--no-rotation", default=None, help="Random rotation.")
@click.option("--flip/--no-flip", default=None, help="Random horizontal flip.")
@click.option(
    "--color/--no-color",
    default=None,
    help="Colour jitter (brightness, contrast, saturation, hue).",
)
@click.option(
    "--crop-scale-min",
    type=float,
    default=None,
    help="β: smallest crop area as a fraction of the source area.  [default: 1e-4; "
    "released: 1/500 of the initial square]",
)
@click.option(
    "--aspect-ratio-min",
    type=float,
    default=0.75,
    help="γ: crop h/w (and so w/h) log-uniform in [this, 1/this].",
)
@click.option(
    "--rotation-degrees",
    type=float,
    default=None,
    help="Rotation angle is uniform in [-this, +this] degrees.  [default: 35; released: 30]",
)
@click.option("--flip-prob", type=float, default=0.5, help="Probability of a horizontal flip.")
@click.option("--brightness", type=float, default=0.4, help="Brightness factor in [1-b, 1+b].")
@click.option("--contrast", type=float, default=0.4, help="Contrast factor in [1-c, 1+c].")
@click.option("--saturation", type=float, default=0.4, help="Saturation factor in [1-s, 1+s].")
@click.option("--hue", type=float, default=0.1, help="Hue shift in [-h, h] turns.")
@click.option(
    "--preview",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write a contact sheet of the first 64 patches here: .jpg at full size, "
    ".png with tiles shrunk to 128 px.",
)
@quiet_option()
def generate(
    images,
    n,
    out,
    size,
    seed,
    shard_size,
    jpeg_quality,
    workers,
    part,
    preset,
    scale,
    rotation,
    flip,
    color,
    preview,
    quiet,
    **strengths,
) -> None:
    """Expand source photos into augmented patches stored as WebDataset tar shards."""
    from sslx.datagen import AugmentConfig, GenerateConfig, generate
    from sslx.datagen.shards import parse_part
    from sslx.datagen.sources import default_image
    from sslx.seeds import check_seed

    check_seed(seed)
    check_out_apart(out, [("--image", image) for image in images if Path(image).is_dir()])
    augment = AugmentConfig.from_preset(
        preset, scale=scale, rotation=rotation, flip=flip, color=color, **strengths
    )
    config = GenerateConfig(
        n=n,
        size=size,
        seed=seed,
        jpeg_quality=jpeg_quality,
        shard_size=shard_size,
        augment=augment,
    )
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


def main(argv: list[str] | None = None) -> int:
    """Entry point. Exit codes: 0 done, 2 bad input, 3 training diverged, 130 interrupted;
    bad input and divergence are one line on stderr, never a traceback."""
    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        code = cli.main(args=argv, prog_name="sslx", standalone_mode=False)
    except (InputError, TrainingDiverged) as e:
        click.echo(f"sslx: error: {e}", err=True)
        return e.exit_code
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help() if e.ctx is not None else "see sslx --help", err=True)
        return 2
    except click.UsageError as e:
        message = e.format_message().replace("\n", " ")
        command = f" {e.ctx.info_name}" if e.ctx is not None and e.ctx.parent is not None else ""
        click.echo(f"sslx{command}: error: {message}", err=True)
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
        click.echo("sslx: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo(
            "sslx: interrupted; rerun the same command to resume (sslx train: add --resume)",
            err=True,
        )
        return 130
    return code if isinstance(code, int) else 0


def _os_error_text(e: OSError) -> str:
    path = e.filename if e.filename is not None else "a file"
    reason = e.strerror or first_line(e)
    if e.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM):
        return f"cannot write {path}: {reason}"
    return f"{path}: {reason}"


if __name__ == "__main__":
    sys.exit(main())
