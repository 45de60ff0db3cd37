"""`--precision auto|fp32|bf16` and `--channels-last` (issue 18): bf16 autocast on CPU as an
opt-in, recorded in config.yaml, deterministic, and old command lines and runs still work."""

from dataclasses import replace

import pytest
import torch
import yaml

from sslx.cli import main
from sslx.errors import InputError
from sslx.train.checkpoint import load_checkpoint
from sslx.train.config import RunOptions, TrainConfig, read_config
from sslx.train.loop import train
from sslx.train.precision import (
    arithmetic_text,
    autocast_dtype,
    check_amp,
    exact_matmul,
    precision_from_flags,
    set_cuda_arithmetic,
    slow_bf16_note,
    use_channels_last,
)

TINY = [
    *(
        "--size 64 --conv1-stride 4 --classifier-width 16 --workers 0 --batch-size 16 --quiet"
    ).split()
]


def _config(shards, precision: str) -> TrainConfig:
    return TrainConfig.for_method(
        "rotnet",
        shards=str(shards),
        batch_size=16,
        epochs=1,
        lr=0.05,
        lr_milestones=(),
        input_size=64,
        conv1_stride=4,
        classifier_width=32,
        shuffle_buffer=32,
        precision=precision,
    )


def _run(config, out, **options) -> dict[str, torch.Tensor]:
    result = train(config, out, RunOptions(workers=0, max_steps=3, quiet=True, **options))
    return {k: v.clone() for k, v in result.method.state_dict().items()}


def _equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_bf16_on_cpu_is_deterministic_recorded_and_differs_from_fp32(shards, tmp_path):
    bf16 = _config(shards, "bf16")
    first, second = _run(bf16, tmp_path / "a"), _run(bf16, tmp_path / "b")
    assert _equal(first, second)  # run to run, bit for bit
    assert not _equal(first, _run(_config(shards, "auto"), tmp_path / "fp32"))  # bf16 was used
    assert read_config(tmp_path / "a" / "config.yaml").precision == "bf16"
    assert load_checkpoint(tmp_path / "a")["config"]["precision"] == "bf16"
    # channels-last is a run option: it runs on CPU too and keeps the run's weights close.
    close = _run(bf16, tmp_path / "cl", channels_last=True)
    assert all(torch.allclose(first[k].float(), close[k].float(), atol=1e-2) for k in first)


def test_auto_on_cpu_is_plain_fp32():
    assert autocast_dtype("auto", True, "cpu") is None
    assert autocast_dtype("auto", True, "cuda") == "bfloat16"
    assert autocast_dtype("auto", False, "cuda") is None  # the old --no-amp
    assert autocast_dtype("fp32", True, "cuda") is None
    assert autocast_dtype("bf16", True, "cpu") == autocast_dtype("bf16", False, "cuda")
    assert [use_channels_last(None, d) for d in ("cpu", "cuda")] == [False, True]
    assert use_channels_last(True, "cpu") and not use_channels_last(False, "cuda")


def test_old_amp_flags_map_onto_precision():
    assert precision_from_flags(None, True) == "auto"
    assert precision_from_flags(None, False) == "fp32"  # --no-amp on a new run
    assert precision_from_flags("bf16", True) == "bf16"
    check_amp("auto", False, "")
    check_amp("fp32", False, "")
    for precision, amp in (("bf16", False), ("bf16", True), ("fp32", True)):
        with pytest.raises(InputError, match="contradicts --precision"):
            check_amp(precision, amp, "")
    with pytest.raises(InputError, match="--precision must be one of auto, fp32, bf16"):
        replace(_config("s", "auto"), precision="fp16")


def test_precision_on_the_command_line_and_on_resume(shards, tmp_path, capsys):
    new = ["train", "--shards", str(shards), "--method", "rotnet", *TINY, "--max-steps", "1"]
    run = tmp_path / "bf16"
    assert main([*new, "--precision", "bf16", "--out", str(run)]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["precision"] == "bf16"
    resume = ["train", "--out", str(run), *"--resume --quiet --max-steps 2".split()]
    assert main([*resume, "--precision", "fp32"]) == 2
    assert "--precision cannot change on --resume (the run has bf16" in capsys.readouterr().err
    assert main([*resume, "--no-amp"]) == 2
    assert "--no-amp contradicts --precision bf16" in capsys.readouterr().err
    assert main([*resume, "--precision", "bf16", "--channels-last"]) == 0
    # The old spelling: --no-amp records fp32; --no-amp with bf16 is refused.
    assert main([*new, "--no-amp", "--out", str(tmp_path / "old")]) == 0
    assert read_config(tmp_path / "old" / "config.yaml").precision == "fp32"
    assert main([*new, *"--no-amp --precision bf16 --out".split(), str(tmp_path / "x")]) == 2
    assert "--no-amp contradicts --precision bf16" in capsys.readouterr().err


def test_a_run_from_before_precision_resumes_as_auto(shards, tmp_path):
    """config.yaml written before --precision existed: it ran as auto, and its old command
    lines, --no-amp included, still resume it."""
    run = tmp_path / "run"
    new = ["train", "--shards", str(shards), "--method", "rotnet", *TINY, "--out", str(run)]
    assert main([*new, "--max-steps", "1"]) == 0
    stored = yaml.safe_load((run / "config.yaml").read_text())
    del stored["precision"]
    (run / "config.yaml").write_text(yaml.safe_dump(stored, sort_keys=False))
    assert read_config(run / "config.yaml").precision == "auto"
    resume = ["train", "--out", str(run), "--resume", "--quiet"]
    assert main([*resume, "--no-amp", "--max-steps", "2"]) == 0
    assert main([*resume, "--amp", "--max-steps", "3"]) == 0
    assert load_checkpoint(run)["progress"]["global_step"] == 3


def test_bf16_on_a_cpu_without_it_gets_a_note(monkeypatch):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert "no native bf16" in slow_bf16_note("bf16", "cpu")
    assert slow_bf16_note("auto", "cpu") is None and slow_bf16_note("bf16", "cuda") is None


@pytest.mark.parametrize(
    "precision, amp, tf32, text",
    [
        ("auto", True, True, "bf16 autocast, TF32 outside autocast"),
        ("bf16", True, True, "bf16 autocast, TF32 outside autocast"),
        ("auto", False, False, "fp32, no TF32"),
        ("fp32", True, False, "fp32, no TF32"),
    ],
)
def test_a_cuda_run_sets_cudnn_autotuning_and_tf32_only_beside_bf16(
    monkeypatch, precision, amp, tf32, text
):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", not tf32)
    before = torch.get_float32_matmul_precision()
    try:
        set_cuda_arithmetic(precision, amp)
        assert torch.backends.cudnn.benchmark is True
        assert torch.backends.cudnn.allow_tf32 is tf32
        assert torch.get_float32_matmul_precision() == ("high" if tf32 else "highest")
        with exact_matmul():  # DeepCluster's clustering step
            assert torch.get_float32_matmul_precision() == "highest"
        assert torch.get_float32_matmul_precision() == ("high" if tf32 else "highest")
    finally:
        torch.set_float32_matmul_precision(before)
    assert arithmetic_text(precision, amp, False, "cuda") == text
    assert arithmetic_text(precision, amp, False, "cpu") in ("fp32", "bf16 autocast")
