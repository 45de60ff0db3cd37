import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace

import torch

from sslx import settings
from sslx.train import load_backbone
from sslx.train.checkpoint import load_checkpoint
from sslx.train.config import RunOptions, TrainConfig
from sslx.train.loop import train
from sslx.train.model import ModelConfig

FAST_MODEL = {"input_size": 64, "conv1_stride": 4, "classifier_width": 32}


def _config(shards, epochs=2) -> TrainConfig:
    return TrainConfig.for_method(
        "rotnet",
        shards=str(shards),
        batch_size=16,
        epochs=epochs,
        lr=0.05,
        lr_milestones=(1,),
        shuffle_buffer=32,
        **FAST_MODEL,
    )


def _options(**kw) -> RunOptions:
    return RunOptions(**{"workers": 1, "log_every": 4, "quiet": True, **kw})


def _records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _state(result) -> dict:
    return {k: v.clone() for k, v in result.method.state_dict().items()}


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(shards, tmp_path):
    config = _config(shards)
    straight = train(config, tmp_path / "a", _options(checkpoint_every=7))
    assert straight.stopped is None and straight.progress.global_step == 30
    first = train(config, tmp_path / "b", _options(max_steps=19, checkpoint_every=7))
    assert first.stopped == "max_steps" and first.progress.global_step == 19
    resumed = train(config, tmp_path / "b", _options(checkpoint_every=7), resume=True)
    assert resumed.progress.global_step == 30 and resumed.progress.finished
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ca, cb = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for group_a, group_b in zip(
        ca["optimizer"]["state"].values(), cb["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(group_a["momentum_buffer"], group_b["momentum_buffer"])
    assert ca["scheduler"]["last_epoch"] == cb["scheduler"]["last_epoch"] == 2
    # The resumed run's log is the uninterrupted one's plus the record of the stop at 19,
    # with nothing logged twice.
    steps = [r["step"] for r in _records(tmp_path / "b")]
    assert steps == sorted([r["step"] for r in _records(tmp_path / "a")] + [19])


def test_run_folder_and_checkpoint_contract(shards, tmp_path):
    result = train(_config(shards, epochs=1), tmp_path / "run", _options(workers=0))
    run = tmp_path / "run"
    assert (run / "config.yaml").exists() and (run / "checkpoint.pt").exists()
    assert any((run / "tensorboard").iterdir())
    records = _records(run)
    steps = [r for r in records if "loss" in r]
    assert {"loss", "rotation_accuracy", "lr", "img_per_s", "bad_samples"} <= steps[0].keys()
    assert records[-1]["event"] == "epoch_end"
    model, record = load_backbone(run)
    assert record["method"] == "rotnet" and record["progress"]["finished"]
    assert ModelConfig.from_dict(record["model"]) == ModelConfig(**FAST_MODEL).resolved()
    assert record["data"]["num_samples"] == 240 and len(record["data"]["fingerprint"]) == 64
    assert record["config"]["optim"]["batch_size"] == 16
    assert not model.training
    trained = result.method.backbone.state_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(v, trained[k])
    taps = model.taps(torch.rand(2, 3, 64, 64))
    assert taps["conv5"].shape == (2, 256, 3, 3)


def test_rotation_task_learns_on_real_patches(shared_images, shard_maker, tmp_path):
    shards = shard_maker(shared_images / "astronaut.png", tmp_path / "s", n=480, shard_size=100)
    changes = {"classifier_width": 256, "batch_size": 32, "lr_milestones": ()}
    config = settings.replace(_config(shards, epochs=4), changes)
    train(config, tmp_path / "run", _options(workers=0, log_every=15))
    accuracy = [r["rotation_accuracy"] for r in _records(tmp_path / "run") if "loss" in r]
    assert accuracy[-1] > max(0.33, accuracy[0] + 0.08)  # chance is 0.25


def test_sigint_stops_with_a_checkpoint_and_the_run_resumes(shards, tmp_path):
    run = tmp_path / "run"
    cmd = [
        sys.executable,
        *"-m sslx.cli train --shards".split(),
        str(shards),
        *(
            "--method rotnet --size 64 --conv1-stride 4 --classifier-width 32 "
            "--batch-size 16 --epochs 50 --log-every 1 --out"
        ).split(),
        str(run),
        "--quiet",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "metrics.jsonl").exists():
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err and "Traceback" not in err
    assert "sslx: stopping after this step, with a checkpoint; press Ctrl-C again" in err
    step = load_checkpoint(run)["progress"]["global_step"]
    assert step > 0
    done = subprocess.run(
        [*cmd[: cmd.index("--shards")], "--out", str(run), *"--resume --epochs 1".split()],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    epoch, after = divmod(step, 15)  # 15 steps per epoch
    said = f"sslx: resuming {run}: epoch {epoch + 1} of 1, after step {after} of 15"
    assert f"{said} (global step {step})" in done.stderr
    progress = load_checkpoint(run)["progress"]
    assert progress["finished"] and progress["global_step"] == max(step, 15)


def test_existing_run_needs_resume_and_resume_keeps_its_config(shards, tmp_path, capsys):
    from sslx.cli import main

    base = [
        "train",
        "--shards",
        str(shards),
        *(
            "--method rotnet --size 64 --conv1-stride 4 --classifier-width 16 "
            "--batch-size 48 --epochs 1 --out"
        ).split(),
        str(tmp_path / "run"),
        *"--quiet --workers 0".split(),
    ]
    assert main(base) == 0
    capsys.readouterr()
    assert main(base) == 2
    assert "add --resume" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "run"), *"--resume --lr 0.5".split()]) == 2
    assert "--lr cannot change on --resume" in capsys.readouterr().err
    assert (
        main(["train", "--out", str(tmp_path / "run"), *"--resume --epochs 2 --quiet".split()]) == 0
    )
    assert load_checkpoint(tmp_path / "run")["progress"]["epoch"] == 2


def test_a_diverging_loss_is_one_line_and_exit_3_keeping_the_last_checkpoint(
    shards, tmp_path, capsys
):
    from sslx.cli import main

    run = tmp_path / "run"
    # A learning rate this large overflows the weights within a few steps.
    args = [
        "train",
        "--shards",
        str(shards),
        *(
            "--method rotnet --size 64 --conv1-stride 4 --classifier-width 16 "
            "--batch-size 16 --lr 1e30 --log-every 1 --checkpoint-every 1 --out"
        ).split(),
        str(run),
        *"--quiet --workers 0".split(),
    ]
    assert main(args) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    match = re.fullmatch(r"sslx: error: the loss became non-finite by step (\d+); .*", err)
    assert match, err
    # The step that diverged was not checkpointed; the one before it was.
    assert load_checkpoint(run)["progress"]["global_step"] == int(match[1]) - 1


def test_run_prints_a_summary_and_a_projection_before_it_ends(shards, tmp_path, capsys):
    config = replace(_config(shards, epochs=1), model=ModelConfig(input_size=64))
    train(config, tmp_path / "run", _options(max_steps=7, quiet=False))
    err = capsys.readouterr().err
    assert "device cpu" in err and "steps/epoch" in err and "240 samples" in err
    assert "5x faster" in err  # stride 2 + fc 4096 on CPU
    assert "s/step" in err and "per epoch" in err
