"""The exceptions the CLI turns into one line on stderr and an exit code, and the checks
that every command shares (torch-free, so `sslx generate` can use them).

Exit codes of `sslx`: 0 done, 2 bad input (`InputError`, and click's usage errors),
3 training diverged (`TrainingDiverged`), 130 interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input from the user: the CLI prints it as one line and exits with code 2.

    Raise it only for problems the user can fix (a missing file, a bad option value,
    a folder that holds another dataset). Bugs must stay ordinary exceptions so that
    they keep their tracebacks.
    """

    exit_code = 2

    def __init__(self, message: str = "") -> None:
        super().__init__(worker_message(message))


def worker_message(text: str) -> str:
    """The error itself, where a DataLoader worker re-raises it in the main process: torch
    rebuilds the exception from "Caught X in DataLoader worker process N." plus the worker's
    whole traceback, whose last line is "module.X: the message"."""
    if not (text.startswith("Caught ") and "\nOriginal Traceback" in text):
        return text
    last = text.rstrip().splitlines()[-1]
    return last.split(": ", 1)[1] if ": " in last else last


class TrainingDiverged(Exception):
    """The training loss became non-finite: not bad input, but a run that blew up (too
    high a learning rate, say). The CLI prints it as one line and exits with code 3; the
    last good checkpoint is kept."""

    exit_code = 3


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception's text (YAML, torch and numpy errors
    span several lines), or its type name."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def check_out_apart(out: Path, inputs: list[tuple[str, Path | str | None]]) -> None:
    """Refuse an output folder that is, is inside, or contains an input folder: writing
    results into the data (or data into the results) corrupts both."""
    for flag, path in inputs:
        if overlap(out, path):
            raise InputError(
                f"--out {out} overlaps the input {flag} {path}; choose an --out outside it"
            )


def check_apart(
    first: tuple[str, Path | str | None], second: tuple[str, Path | str | None], why: str
) -> None:
    """Refuse two folders given for different things that are one, or one inside the
    other (compared resolved, links followed); `why` says what would go wrong."""
    (flag_a, a), (flag_b, b) = first, second
    if overlap(a, b):
        raise InputError(f"{flag_a} {a} overlaps {flag_b} {b}: {why}; give folders apart")


def overlap(a: Path | str | None, b: Path | str | None) -> bool:
    """Whether two paths are one, or one is inside the other (resolved); False for None."""
    if a is None or b is None or str(a) == "" or str(b) == "":
        return False
    x, y = Path(a).expanduser().resolve(), Path(b).expanduser().resolve()
    return x == y or x in y.parents or y in x.parents
