"""The arithmetic of a training step: `--precision` (stored in config.yaml) and the memory
format (`--channels-last`, a run option). Torch-free at import, for `sslx train --help`.

- `auto` (the default): bf16 autocast on CUDA (unless `--no-amp`), fp32 on CPU, so CPU
  results are the same as before `--precision` existed;
- `fp32`: no autocast anywhere (what `--no-amp` meant on CUDA);
- `bf16`: bf16 autocast on every device, CPU included; CPUs with AVX-512 BF16 or AMX
  run it natively, others emulate it slowly (benchmarks/train_cpu.py measures it).

Weights, optimiser state and losses stay fp32 in every case: autocast runs convolutions
and matrix products in bf16, and the methods compute their losses in fp32.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING

from sslx.errors import InputError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16")


def precision_from_flags(precision: str | None, amp: bool) -> str:
    """A new run's precision: `--precision`, else the old `--no-amp` spelled as fp32."""
    if precision is not None:
        return precision
    return "auto" if amp else "fp32"


def check_amp(precision: str, amp: bool, where: str) -> None:
    """`--amp`/`--no-amp` (given on the command line) only choose within `auto`, or repeat
    fp32; against bf16 or an explicit fp32 they contradict the run's precision."""
    if precision == "auto" or (precision == "fp32" and not amp):
        return
    flag = "--amp" if amp else "--no-amp"
    raise InputError(
        f"{flag} contradicts --precision {precision} ({where}); give only "
        "--precision (--amp/--no-amp are the old spelling of auto/fp32)"
    )


def autocast_dtype(precision: str, amp: bool, device_type: str) -> str | None:
    """The autocast dtype's name ("bfloat16") where a step runs under autocast, else None."""
    if precision == "bf16" or (precision == "auto" and amp and device_type == "cuda"):
        return "bfloat16"
    return None


def step_autocast(precision: str, amp: bool, device: torch.device) -> AbstractContextManager:
    """The context a training step's forward pass runs in."""
    import torch

    dtype = autocast_dtype(precision, amp, device.type)
    if dtype is None:
        return nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, dtype))


def set_cuda_arithmetic(precision: str, amp: bool) -> None:
    """A CUDA run's library settings. cuDNN autotuning on: a run's shapes are fixed, so
    each convolution is timed once, and GPU runs are not bit-for-bit repeatable anyway.
    TF32 (a 10-bit mantissa) for the fp32 convolutions and matrix products outside
    autocast where the step already runs in bf16 (8 bits); off under fp32, which means
    fp32. DeepCluster's clustering step opts out (`exact_matmul`)."""
    import torch

    tf32 = autocast_dtype(precision, amp, "cuda") is not None
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


@contextmanager
def exact_matmul() -> Iterator[None]:
    """fp32 matrix products without TF32 inside, as they were outside."""
    import torch

    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def use_channels_last(option: bool | None, device_type: str) -> bool:
    """`--channels-last` as given, else on CUDA only: on CPU it helped BiGAN and bf16 runs
    but not fp32 RotNet (docs/benchmarks.md, issue 18), so it stays an opt-in there."""
    return device_type == "cuda" if option is None else option


def arithmetic_text(precision: str, amp: bool, channels_last: bool, device_type: str) -> str:
    """E.g. "bf16 autocast, channels-last", for the start-up summary."""
    bf16 = autocast_dtype(precision, amp, device_type) is not None
    text = "bf16 autocast" if bf16 else "fp32"
    if device_type == "cuda":
        text += ", TF32 outside autocast" if bf16 else ", no TF32"
    return text + (", channels-last" if channels_last else "")


def slow_bf16_note(precision: str, device_type: str) -> str | None:
    """A note when `--precision bf16` runs on a CPU that has to emulate bf16 (slowly)."""
    if precision != "bf16" or device_type != "cpu":
        return None
    import torch

    try:  # oneDNN's own check: AVX-512 BF16, AMX or an ARM equivalent
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        native = True  # unknown: say nothing
    if native:
        return None
    return (
        "sslx: note: this CPU has no native bf16 (AVX-512 BF16 or AMX); --precision bf16 "
        "may be slower than fp32 here"
    )
