"""Run logging: `metrics.jsonl` (one JSON object per line) plus TensorBoard events, and
the meter that averages a method's metrics between two log points."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sslx.atomic import strict_json, write_text_atomic
from sslx.common.locks import FolderLock
from sslx.errors import InputError

if TYPE_CHECKING:
    import torch


class Meter:
    """Batch-size-weighted sums of the method's metrics between two log points."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.started = time.perf_counter()

    def add(self, metrics: dict[str, torch.Tensor], n: int) -> None:
        for k, v in metrics.items():
            v = v.detach().float() * n
            self.sums[k] = self.sums[k] + v if k in self.sums else v
        self.count += n


def _records(path: Path) -> list[tuple[str, dict]]:
    """Each line of a run's metrics.jsonl with its record. The append is not atomic, so a
    run killed mid-write leaves a torn last line: dropped, with a note. A damaged line
    before it is refused, naming the file and the way on."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    out = []
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            record = None
        if isinstance(record, dict):
            out.append((line, record))
        elif number == len(lines):
            print(f"sslx: dropped the torn last line of {path}", file=sys.stderr)
        else:
            raise InputError(
                f"{path} line {number} is not a JSON record; move the file aside to resume "
                "with a new log"
            )
    return out


def last_logged(path: Path, key: str) -> float | None:
    """The last value of `key` in a run's metrics.jsonl; None without one."""
    if not path.is_file():
        return None
    values = [r[key] for _, r in _records(path) if isinstance(r.get(key), int | float)]
    return float(values[-1]) if values else None


class MetricsLog:
    """Writes only on the main rank. On resume, drops records past the resume step. It holds
    the run folder's lock while open: a second run into the same folder is refused before
    it touches the log."""

    def __init__(self, run_dir: Path, enabled: bool, resume_step: int = 0) -> None:
        self.enabled = enabled
        self.run_dir = run_dir  # where methods may write their own files (e.g. BiGAN's pictures)
        self.path = run_dir / "metrics.jsonl"
        self.writer = None
        self.lock = None
        if not enabled:
            return
        self.lock = FolderLock(run_dir)
        try:
            self._open(resume_step)
        except BaseException:
            self.lock.release()
            raise

    def _open(self, resume_step: int) -> None:
        if resume_step and self.path.exists():
            kept = [
                line for line, record in _records(self.path) if record.get("step", 0) <= resume_step
            ]
            write_text_atomic(self.path, "".join(f"{line}\n" for line in kept))
        elif self.path.exists():
            self.path.unlink()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(
            str(self.run_dir / "tensorboard"), purge_step=resume_step or None
        )

    def write(self, record: dict, step: int, prefix: str = "train") -> None:
        if not self.enabled:
            return
        record = {"step": step, **record}
        with open(self.path, "a") as f:
            f.write(json.dumps(strict_json(record), allow_nan=False) + "\n")
        for key, value in record.items():
            if key not in ("step", "epoch", "event") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def add_image(self, tag: str, image, step: int) -> None:
        if self.enabled:
            self.writer.add_image(tag, image, step, dataformats="HWC")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.lock is not None:
            self.lock.release()
