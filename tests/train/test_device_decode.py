"""`--decode gpu`: the loader sends bytes and boxes, the device decodes and crops. On CPU
(torchvision's libjpeg decoder standing in for nvJPEG): the same samples, boxes and
photometric draws as the CPU loader, pixels within decoder tolerance, and bad JPEGs
counted as the CPU loader counts them."""

import json

import numpy as np
import pytest
import torch

from sslx.common.crops import sample_crops
from sslx.common.sampling import CropConfig
from sslx.train.config import TrainConfig
from sslx.train.data import ShardStream
from sslx.train.device_decode import crop_resize, decode_on_device
from sslx.train.loop import build_method

CPU = torch.device("cpu")


def _streams(shards, size: int, views=()):
    kw = dict(batch_size=48, input_size=size, crop=CropConfig(), seed=5, shuffle_buffer=32)
    host, encoded = (
        ShardStream(shards, **kw, views=views),
        ShardStream(shards, **kw, views=views, encoded=True),
    )
    for stream in (host, encoded):
        stream.set_epoch(2)
    return list(host), list(encoded)


@pytest.mark.parametrize(
    "device",
    [
        pytest.param(CPU, id="cpu"),
        pytest.param(torch.device("cuda"), id="cuda", marks=pytest.mark.gpu),
    ],
)
@pytest.mark.parametrize("size", [32, 96])  # shrinking and enlarging crops of 64 px patches
def test_one_view_matches_the_cpu_loader(shards, size, device):
    """On CUDA: nvJPEG against OpenCV's libjpeg-turbo, to the same tolerance."""
    host, encoded = _streams(shards, size)
    assert len(host) == len(encoded) == 5
    for a, b in zip(host, encoded, strict=True):
        assert torch.equal(a.index, b.index)  # the same samples in the same order
        c = sample_crops(5, 2, b.index.tolist(), 64, 64, CropConfig())
        want = np.stack([c.x0, c.y0, c.w, c.h, c.flip], 1)
        assert np.array_equal(b.encoded.boxes[0].numpy(), want)  # the CPU loader's boxes
        got = decode_on_device(b, device)
        assert got.image.shape == a.image.shape == (48, size, size, 3) and got.bad == 0
        assert got.image.device.type == device.type
        diff = (got.image.cpu().float() - a.image.float()).abs()
        # JPEG decoders and resize filters differ; a wrong box or flip is tens of levels off.
        assert diff.mean() < 1.5 and diff.quantile(0.99) < 12, (diff.mean(), diff.max())


def test_every_view_matches_the_cpu_loader(shards):
    config = TrainConfig.for_method("dino", shards=str(shards), input_size=32, local_crops=2)
    views = build_method(config).views(config.crop, 32)
    host, encoded = _streams(shards, 32, views)
    a, b = host[0], decode_on_device(encoded[0], CPU)
    assert len(a.views) == len(b.views) == 4
    for va, vb in zip(a.views, b.views, strict=True):
        assert torch.equal(va.params, vb.params)  # the photometric draws travel unchanged
        diff = (va.image.float() - vb.image.float()).abs()
        assert diff.mean() < 1.5, diff.mean()
    assert b.image is b.views[0].image


def test_a_wrong_box_or_flip_is_far_off(shards):
    """What the tolerance above would catch: the same crops, each flipped the other way."""
    host, encoded = _streams(shards, 32)
    b = encoded[0]
    b.encoded.boxes[0, :, 4] ^= 1
    diff = (decode_on_device(b, CPU).image.float() - host[0].image.float()).abs()
    assert diff.mean() > 5, diff.mean()


def test_undecodable_samples_are_left_out_and_counted(shards):
    _, encoded = _streams(shards, 32)
    b = encoded[0]
    b.encoded.data[3] = b.encoded.data[3][:40]  # truncated
    b.encoded.data[7] = torch.zeros(100, dtype=torch.uint8)  # not a JPEG
    got = decode_on_device(b, CPU)
    assert got.bad == 2 and len(got) == 46 and got.image.shape[0] == 46
    bad = {int(b.index[3]), int(b.index[7])}
    assert bad.isdisjoint(got.index.tolist())
    assert all("is not a decodable 64x64 JPEG" in e for e in got.errors) and len(got.errors) == 2


def test_crop_resize_of_a_known_image():
    """A 4x4 ramp: the whole image at 2x2 averages 2x2 blocks; a one-pixel box at 2x2 is
    bilinear between that pixel and its neighbours (OpenCV, which crops before it
    resizes, repeats the edge instead: one of the differences at a crop's border)."""
    ramp = torch.arange(16.0).view(1, 1, 4, 4).expand(1, 3, 4, 4) * 10
    whole = crop_resize(ramp, torch.tensor([[0, 0, 4, 4, 0]]), 2)[0, :, :, 0]
    assert whole.tolist() == [[25, 45], [105, 125]]
    flipped = crop_resize(ramp, torch.tensor([[0, 0, 4, 4, 1]]), 2)[0, :, :, 0]
    assert flipped.tolist() == [[45, 25], [125, 105]]
    box = crop_resize(ramp, torch.tensor([[1, 1, 1, 1, 0]]), 2)[0, :, :, 0]
    assert box.tolist() == [[38, 42], [58, 62]]  # 50 -/+ a quarter pixel of the ramp


@pytest.mark.parametrize("method", ["rotnet", "simclr"])
def test_the_loop_trains_on_batches_decoded_on_the_device(method, shards, tmp_path):
    """Plumbing: the loop decodes, counts and trains; the losses stay those of the CPU
    loader's pixels (the tests above hold the pixels to the CPU loader's)."""
    from sslx.train.config import RunOptions
    from sslx.train.loop import train

    extra = {"hidden_dim": 32, "projection_dim": 16} if method == "simclr" else {}
    sizes = dict(input_size=32, conv1_stride=2, classifier_width=32, batch_size=48)
    config = TrainConfig.for_method(
        method, shards=str(shards), epochs=1, shuffle_buffer=32, **sizes, **extra
    )
    losses = []
    for decode in ("cpu", "gpu"):
        options = RunOptions(workers=1, log_every=1, quiet=True, max_steps=3, decode=decode)
        result = train(config, tmp_path / decode, options)
        assert result.progress.global_step == 3
        records = (tmp_path / decode / "metrics.jsonl").read_text().splitlines()
        losses.append([r["loss"] for r in map(json.loads, records) if "event" not in r])
    assert losses[1] == pytest.approx(losses[0], rel=0.02), losses
