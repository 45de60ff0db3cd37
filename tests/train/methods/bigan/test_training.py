"""BiGAN through the one training loop: resume, pictures, NaN stop, CLI and probe contract."""

import json
from dataclasses import asdict

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from sslx.errors import TrainingDiverged
from sslx.train import load_backbone
from sslx.train.checkpoint import load_checkpoint
from sslx.train.config import RunOptions, TrainConfig
from sslx.train.loop import build_method, train
from sslx.train.methods.bigan.method import BiGAN

MODEL = {"input_size": 64, "conv1_stride": 4, "classifier_width": 32}
OPTIONS = {"latent_dim": 16, "gan_size": 32, "gan_width": 8}


def _config(shards, epochs=2) -> TrainConfig:
    return TrainConfig.for_method(
        "bigan",
        shards=str(shards),
        batch_size=16,
        epochs=epochs,
        lr_milestones=(1,),
        lr_gamma=0.5,
        shuffle_buffer=32,
        **MODEL,
        **OPTIONS,
    )


def _options(**kw) -> RunOptions:
    return RunOptions(**{"workers": 1, "log_every": 4, "quiet": True, **kw})


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(shards, tmp_path):
    config = _config(shards)
    straight = train(config, tmp_path / "a", _options(checkpoint_every=7))
    first = train(config, tmp_path / "b", _options(max_steps=19, checkpoint_every=7))
    assert first.stopped == "max_steps" and first.progress.global_step == 19
    resumed = train(config, tmp_path / "b", _options(checkpoint_every=7), resume=True)
    assert straight.progress.global_step == resumed.progress.global_step == 30
    a, b = straight.method.state_dict(), resumed.method.state_dict()
    assert a.keys() == b.keys() and any(k.startswith("generator.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ca, cb = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for sa, sb in zip(
        ca["optimizer"]["state"].values(), cb["optimizer"]["state"].values(), strict=True
    ):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])
        assert torch.equal(sa["exp_avg_sq"], sb["exp_avg_sq"])
    # The pictures of both epochs are the same, byte for byte.
    for folder in ("samples", "recons"):
        for epoch in (1, 2):
            name = f"{folder}/epoch_{epoch:04d}.png"
            assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_run_leaves_pictures_metrics_and_a_probe_ready_checkpoint(shards, tmp_path):
    run = tmp_path / "run"
    train(_config(shards, epochs=1), run, _options(workers=0))
    for folder in ("samples", "recons"):
        with Image.open(run / folder / "epoch_0001.png") as image:
            assert image.format == "PNG" and image.size == (274, 274)
    assert not list(run.rglob("*.tmp"))
    events = EventAccumulator(str(run / "tensorboard")).Reload()
    assert {"bigan/samples", "bigan/recons"} <= set(events.Tags()["images"])
    assert events.Images("bigan/samples")[0].step == 15  # the global step at the epoch's end
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "loss" in r]
    assert {
        "d_loss",
        "ge_loss",
        "loss_balance",
        "d_accuracy_real",
        "d_accuracy_fake",
        "d_real",
        "d_fake",
    } <= logged[0].keys()
    model, record = load_backbone(run)
    assert record["method"] == "bigan" and not model.training
    assert any(k.startswith("discriminator.") for k in record["heads"])
    assert model.taps(torch.rand(2, 3, 64, 64))["conv5"].shape[1] == 256
    # fc6/fc7 are not part of BiGAN's encoder: still at their seeded initialisation.
    fresh = build_method(_config(shards, epochs=1)).backbone.state_dict()
    assert torch.equal(model.state_dict()["fc6.1.weight"], fresh["fc6.1.weight"])
    assert not torch.equal(
        model.state_dict()["convs.conv1.0.weight"], fresh["convs.conv1.0.weight"]
    )


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(shards, tmp_path, monkeypatch):
    forward, calls = BiGAN.forward, []

    def diverging(self, images, batch):
        out = forward(self, images, batch)
        calls.append(1)
        return out._replace(loss=out.loss * float("nan")) if len(calls) > 5 else out

    monkeypatch.setattr(BiGAN, "forward", diverging)
    run = tmp_path / "run"
    message = "non-finite by step 6; the last good checkpoint is kept"
    with pytest.raises(TrainingDiverged, match=message):
        train(_config(shards, epochs=1), run, _options(workers=0, log_every=2, checkpoint_every=4))
    payload = load_checkpoint(run)
    assert payload["progress"]["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in payload["heads"].values() if v.is_floating_point())
    model, _ = load_backbone(run)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_cli_trains_bigan_and_refuses_bad_options(shards, tmp_path, capsys):
    from sslx.cli import main

    run = tmp_path / "run"
    base = [
        "train",
        "--shards",
        str(shards),
        *(
            "--method bigan --size 64 --conv1-stride 4 --classifier-width 16 "
            "--gan-size 32 --gan-width 8 --latent-dim 16 --batch-size 48 --quiet "
            "--workers 0"
        ).split(),
    ]
    assert main([*base, "--epochs", "1", "--out", str(run)]) == 0
    config = load_checkpoint(run)["config"]
    assert config["method_options"] == OPTIONS  # config.yaml's form: a plain dict
    assert config["optim"]["momentum"] == 0.5 and config["optim"]["lr"] == 2e-4
    assert (run / "samples" / "epoch_0001.png").exists()
    assert main(["train", "--out", str(run), *"--resume --epochs 2 --quiet".split()]) == 0
    assert (run / "recons" / "epoch_0002.png").exists()
    capsys.readouterr()
    for args, message in [
        (["--gan-size", "48"], "power of two"),
        (["--momentum", "1"], "beta1"),
        (["--momentum", "1.5"], "--momentum must be in [0, 1]"),
    ]:
        assert main([*base, *args, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert main(["train", "--out", str(run), *"--resume --gan-size 64".split()]) == 2
    assert "--gan-size cannot change on --resume" in capsys.readouterr().err


def test_default_config_is_the_reference_one(shards):
    config = TrainConfig.for_method("bigan", shards=str(shards))
    o = config.optim
    assert (o.batch_size, o.lr, o.momentum, o.weight_decay) == (128, 2e-4, 0.5, 2.5e-5)
    assert config.model.input_size == 64
    assert asdict(config.method_options) == {"latent_dim": 200, "gan_size": 64, "gan_width": 64}
    scheduler_lr = [2e-4 * o.lr_gamma ** sum(m <= e for m in o.lr_milestones) for e in range(100)]
    assert scheduler_lr[49] == 2e-4 and scheduler_lr[99] == pytest.approx(2e-6)


@pytest.mark.slow
def test_two_process_ddp_on_cpu(shards, tmp_path, torchrun):
    """Every trainable parameter gets a gradient each step, so DDP accepts the one backward."""
    run = tmp_path / "run"
    args = (
        "--method bigan --size 64 --conv1-stride 4 --classifier-width 16 --gan-size 32 "
        "--gan-width 8 --latent-dim 16 --batch-size 48 --epochs 1 --quiet --device cpu"
    )
    torchrun("-m", "sslx.cli", "train", *args.split(), "--shards", shards, "--out", run)
    payload = load_checkpoint(run)  # global batch 48 (24 per rank): 240 // 48 = 5 steps
    assert payload["layout"]["world_size"] == 2 and payload["progress"]["global_step"] == 5
    assert (run / "samples" / "epoch_0001.png").exists()
    assert (run / "recons" / "epoch_0001.png").exists()
