import json
import tarfile
from dataclasses import replace

import numpy as np
import pytest
import torch

from sslx.common.crops import CropConfig
from sslx.train.alexnet import AlexNet
from sslx.train.batches import Batch, rank_batches
from sslx.train.checkpoint import load_checkpoint
from sslx.train.config import RunOptions, TrainConfig
from sslx.train.loop import train
from sslx.train.methods.deepcluster.method import DeepCluster, clusters_path, uniform_label_draws
from sslx.train.methods.deepcluster.shard_index import EpochDataset, ShardIndex
from sslx.train.methods.deepcluster.spec import DeepClusterOptions
from sslx.train.model import ModelConfig

FAST_MODEL = ModelConfig(input_size=64, conv1_stride=4, classifier_width=32, sobel=True)


def _config(shards, epochs=2, **method_options) -> TrainConfig:
    options = {"clusters": 12, "pca_dim": 16, "kmeans_backend": "torch", **method_options}
    return TrainConfig.for_method(
        "deepcluster",
        shards=str(shards),
        batch_size=16,
        epochs=epochs,
        input_size=64,
        conv1_stride=4,
        classifier_width=32,
        **options,
    )


def _context(config, out):
    from sslx.train.methods.base import EpochContext

    return EpochContext(0, torch.device("cpu"), config, out, data=None)


def _options(**kw) -> RunOptions:
    return RunOptions(**{"workers": 0, "log_every": 4, "quiet": True, **kw})


def _records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_sampler_is_uniform_over_non_empty_clusters_and_exactly_n_long():
    rng = np.random.default_rng(0)
    # Clusters 0..9 with very different sizes; 3 and 7 are empty.
    sizes = [400, 1, 3, 0, 50, 200, 9, 0, 30, 307]
    assignments = rng.permutation(np.repeat(np.arange(10), sizes))
    n = len(assignments)
    draws = uniform_label_draws(assignments, n, seed=0, epoch=0)
    assert len(draws) == n == 1000
    counts = np.bincount(assignments[draws], minlength=10)
    assert counts[3] == counts[7] == 0  # empty clusters are skipped
    filled = counts[[0, 1, 2, 4, 5, 6, 8, 9]]
    per_cluster = n // 8 + 1  # 126 each before the cut to n removes 8
    assert filled.max() <= per_cluster and filled.min() >= per_cluster - 8
    # Larger clusters than per_cluster are drawn without replacement.
    big = draws[assignments[draws] == 0]
    assert len(np.unique(big)) == len(big)
    assert np.array_equal(draws, uniform_label_draws(assignments, n, seed=0, epoch=0))
    assert not np.array_equal(draws, uniform_label_draws(assignments, n, seed=0, epoch=1))


def test_shard_index_reads_each_sample_and_draws_are_deterministic(shards):
    index = ShardIndex(shards)
    with tarfile.open(shards / "shard-000001.tar") as tar:
        member = tar.getmember("000000057.jpg")
        assert index.read(57) == tar.extractfile(member).read()
    draws = EpochDataset(
        index,
        np.array([5, 5, 9]),
        np.array([1, 1, 2]),
        input_size=32,
        crop=CropConfig(),
        seed=0,
        epoch=0,
    )
    first, again = draws[0], draws[0]
    assert first[0].shape == (32, 32, 3) and first[0].dtype == np.uint8
    assert np.array_equal(first[0], again[0]) and first[1:] == (5, 1, None)
    assert not np.array_equal(draws[0][0], draws[1][0])  # a sample drawn twice: two crops
    assert rank_batches(100, 16, 1, 2, start_step=4) == [list(range(82, 90)), list(range(90, 98))]


def test_head_is_reset_each_epoch_and_trained_without_momentum():
    method = DeepCluster(AlexNet(FAST_MODEL), DeepClusterOptions(clusters=10))
    method.reset_head(seed=0, epoch=3)
    first = method.head.weight.detach().clone()
    assert first.std().item() == pytest.approx(0.01, rel=0.1)
    method.head.weight.data.add_(1.0)
    method.head.bias.data.add_(1.0)
    method.reset_head(seed=0, epoch=3)
    assert torch.equal(method.head.weight, first) and not method.head.bias.any()
    method.reset_head(seed=0, epoch=4)
    assert not torch.equal(method.head.weight, first)
    optimizer = method.configure_optimizer(_config("unused").optim)
    images = torch.randint(0, 255, (4, 3, 64, 64), dtype=torch.uint8)
    batch = Batch(images.permute(0, 2, 3, 1), torch.arange(4), torch.tensor([0, 1, 2, 3]))
    method(images, batch).loss.backward()
    optimizer.step()
    head = {id(p) for p in method.head.parameters()}
    assert [g["momentum"] for g in optimizer.param_groups] == [0.9, 0.0]
    for p, state in optimizer.state.items():
        assert (id(p) in head) == (state.get("momentum_buffer") is None)


def test_end_to_end_logs_clusters_and_resumes_exactly(shards, tmp_path):
    config = _config(shards)
    straight = train(config, tmp_path / "a", _options(checkpoint_every=7))
    assert straight.stopped is None and straight.progress.global_step == 30
    first = train(config, tmp_path / "b", _options(max_steps=19, checkpoint_every=7))
    assert first.stopped == "max_steps"
    resumed = train(config, tmp_path / "b", _options(checkpoint_every=7), resume=True)
    a, b = straight.method.state_dict(), resumed.method.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for epoch in range(2):
        saved = np.load(clusters_path(tmp_path / "a", epoch))
        assert saved.dtype == np.int32 and saved.shape == (240,)
        assert np.array_equal(saved, np.load(clusters_path(tmp_path / "b", epoch)))
    clustering = [r for r in _records(tmp_path / "a") if r.get("event") == "clustering"]
    assert [r["epoch"] for r in clustering] == [1, 2]
    assert clustering[0]["nmi_previous"] is None and 0 <= clustering[1]["nmi_previous"] <= 1
    stats = {
        "kmeans_objective",
        "empty_clusters",
        "cluster_size_min",
        "cluster_size_median",
        "cluster_size_max",
        "seconds_features",
        "seconds_pca",
        "seconds_kmeans",
    }
    assert stats <= clustering[0].keys()
    # The resumed run clustered each epoch once: epoch 2 resumed from its saved clusters.
    resumed_log = [r for r in _records(tmp_path / "b") if r.get("event") == "clustering"]
    assert [r["epoch"] for r in resumed_log] == [1, 2]
    steps = [r for r in _records(tmp_path / "a") if "loss" in r]
    assert "cluster_accuracy" in steps[0]
    assert load_checkpoint(tmp_path / "a")["model"]["sobel"] is True


def test_features_are_fc7_before_relu_in_eval_mode(shards, tmp_path):
    config = _config(shards, epochs=1)
    method = DeepCluster(AlexNet(FAST_MODEL), config.method_options)
    method.train()
    method._shards = ShardIndex(shards)
    ctx = _context(config, tmp_path)
    features = torch.cat(list(method.embed_batches(np.arange(40), ctx)))
    assert method.training and features.shape == (40, 32)
    assert (features < 0).any()  # before the final ReLU
    again = torch.cat(list(method.embed_batches(np.arange(20, 30), ctx)))
    torch.testing.assert_close(again, features[20:30])  # no dropout, no augmentation
    bf16 = replace(ctx, autocast=torch.autocast("cpu", dtype=torch.bfloat16))
    rounded = torch.cat(list(method.embed_batches(np.arange(20, 30), bf16)))
    assert rounded.dtype == torch.float32  # the step's arithmetic (bf16 on CUDA), fp32 out
    assert not torch.equal(rounded, again)
    torch.testing.assert_close(rounded, again, rtol=0.1, atol=0.1)


def test_too_many_clusters_is_refused_with_a_suggestion(shards, tmp_path, capsys):
    from sslx.cli import main

    args = [
        "train",
        "--shards",
        str(shards),
        *"--method deepcluster --clusters 200 --size 64 --batch-size 16 --out".split(),
        str(tmp_path / "run"),
        "--quiet",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "try --clusters 12" in err, err
    assert not (tmp_path / "run").exists()
    assert main([*args, *"--clusters 12 --kmeans-backend nope".split()]) == 2
    assert "Invalid value for '--kmeans-backend'" in capsys.readouterr().err


def test_faiss_backend_runs_in_the_loop(shards, tmp_path):
    pytest.importorskip("faiss")
    config = _config(shards, epochs=1, kmeans_backend="faiss")
    config = replace(config, optim=replace(config.optim, batch_size=48))
    train(config, tmp_path / "run", _options())
    log = [r for r in _records(tmp_path / "run") if r.get("event") == "clustering"]
    assert log[0]["kmeans_backend"] == "faiss" and log[0]["empty_clusters"] >= 0


def test_shard_index_opens_no_tar_when_the_table_exists(shards, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("ShardIndex opened a tar")

    monkeypatch.setattr(tarfile, "open", refuse)
    index = ShardIndex(shards)
    monkeypatch.undo()
    with tarfile.open(shards / "shard-000001.tar") as tar:
        member = tar.getmember("000000057.jpg")
        assert index.read(57) == tar.extractfile(member).read()


def test_clustering_features_see_the_central_224_of_256(shards, tmp_path):
    """facebookresearch/deepcluster main.py: the images to cluster are Resize(256) +
    CenterCrop(224), so embed equals the backbone on the central 224/256 of each patch."""
    from sslx.common.crops import centre_crops
    from sslx.train.methods.deepcluster.method import EMBED_CENTRE

    assert EMBED_CENTRE == 224 / 256
    config = _config(shards, epochs=1)
    method = DeepCluster(AlexNet(FAST_MODEL), config.method_options)
    method._shards = ShardIndex(shards)
    ctx = _context(config, tmp_path)
    features = torch.cat(list(method.embed_batches(np.arange(4), ctx)))
    whole = EpochDataset(method._shards, np.arange(4), input_size=64, crop=None)
    images = torch.from_numpy(np.stack([whole[i][0] for i in range(4)])).permute(0, 3, 1, 2)
    method.backbone.eval()
    with torch.no_grad():
        resized = method.backbone(images, final_relu=False)
    assert not torch.allclose(features, resized, atol=1e-4)  # not the whole patch
    box = centre_crops(1, 256, 256, EMBED_CENTRE)
    assert (box.w[0], box.x0[0]) == (224, 16)


def test_a_damaged_previous_clusters_file_costs_only_its_nmi(shards, tmp_path, capsys):
    """The last epoch's clusters only feed the log's nmi_previous: a file of the wrong
    length is said in one line and the run goes on."""
    config = _config(shards, epochs=1, clusters=4, pca_dim=8)
    train(config, tmp_path / "a", _options())
    np.save(clusters_path(tmp_path / "a", 0), np.zeros(7, np.int32))
    capsys.readouterr()
    train(config.with_epochs(2), tmp_path / "a", _options(), resume=True)
    err = capsys.readouterr().err
    assert "nmi_previous not logged" in err and "epoch_0000.npy is damaged" in err, err
    record = [r for r in _records(tmp_path / "a") if r.get("event") == "clustering"][-1]
    assert record["epoch"] == 2 and record["nmi_previous"] is None


def test_ctrl_c_in_the_feature_pass_stops_at_once_and_the_run_resumes_exactly(
    shards, tmp_path, monkeypatch, capsys
):
    """The clustering step can take minutes: a stop request gives it up at the next batch,
    saves the state of the epoch's start, and a resumed run equals an uninterrupted one."""
    import os
    import signal

    config = _config(shards)
    straight = train(config, tmp_path / "a", _options())
    embed = DeepCluster.embed_batches
    pressed = []

    def pressing_ctrl_c(self, indices, ctx):
        for i, x in enumerate(embed(self, indices, ctx)):
            if ctx.epoch == 1 and i == 2 and not pressed:
                pressed.append(ctx.step)
                os.kill(os.getpid(), signal.SIGINT)  # the installed handler takes it
            yield x

    monkeypatch.setattr(DeepCluster, "embed_batches", pressing_ctrl_c)
    first = train(config, tmp_path / "b", _options(quiet=False))
    err = capsys.readouterr().err
    assert first.stopped == "interrupted" and pressed == [15]
    assert "stopping after this step, with a checkpoint; press Ctrl-C again" in err
    assert "clustering: features" in err  # the feature pass's own progress bar
    progress = load_checkpoint(tmp_path / "b")["progress"]
    assert (progress["epoch"], progress["step_in_epoch"], progress["global_step"]) == (1, 0, 15)
    assert not clusters_path(tmp_path / "b", 1).exists()
    monkeypatch.setattr(DeepCluster, "embed_batches", embed)
    resumed = train(config, tmp_path / "b", _options(), resume=True)
    a, b = straight.method.state_dict(), resumed.method.state_dict()
    for k in a:
        assert torch.equal(a[k], b[k]), k
