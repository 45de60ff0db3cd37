"""Each method lives in one folder: its torch-free spec says everything the rest of sslx
reads about it, and its plug-in takes its name, defaults and options from there."""

from pathlib import Path

import numpy as np
import pytest
import torch

from sslx import settings
from sslx.common.views import draw_view
from sslx.train.batches import Batch, View
from sslx.train.config import TrainConfig
from sslx.train.loop import build_method
from sslx.train.methods import REGISTERED, SPECS, plugin

METHODS_DIR = Path(__file__).resolve().parents[3] / "train" / "methods"


def test_every_registered_method_takes_everything_from_its_spec():
    assert list(SPECS) == list(REGISTERED)
    for name, spec in SPECS.items():
        cls = plugin(name)
        assert spec.name == name and (METHODS_DIR / name / "spec.py").is_file()
        assert cls.spec is spec and cls.name == name
        assert cls.defaults is spec.defaults and cls.needs_shards == spec.needs_shards
        assert spec.summary and len(spec.summary) < 65 and "\n" not in spec.summary
        assert (METHODS_DIR.parents[1] / spec.docs).is_file(), spec.docs
        assert spec.defaults.reference, name
        settings.declared(spec.options)  # its options are settings, keys unique
    assert not SPECS["supervised"].needs_shards and SPECS["rotnet"].needs_shards
    assert SPECS["deepcluster"].defaults.sobel and SPECS["rotnet"].defaults.nesterov


def test_no_two_methods_give_one_flag_two_meanings():
    seen: dict[str, settings.Setting] = {}
    for spec in SPECS.values():
        for key, d in settings.declared(spec.options).items():
            assert seen.setdefault(key, d.setting) is d.setting, key
            assert key not in settings.declared(TrainConfig), key


@pytest.fixture
def configs(shards, image_folder) -> dict[str, TrainConfig]:
    tiny = {"input_size": 32, "classifier_width": 16, "batch_size": 4}
    data = {"shards": str(shards)}
    return {
        "rotnet": TrainConfig.for_method("rotnet", **data, **tiny),
        "deepcluster": TrainConfig.for_method("deepcluster", **data, clusters=3, **tiny),
        "bigan": TrainConfig.for_method("bigan", **data, gan_size=8, gan_width=4, **tiny),
        "supervised": TrainConfig.for_method("supervised", data_dir=str(image_folder), **tiny),
        "simclr": TrainConfig.for_method("simclr", **data, projection_dim=8, **tiny),
        "byol": TrainConfig.for_method("byol", **data, hidden_dim=8, projection_dim=8, **tiny),
        "simsiam": TrainConfig.for_method(
            "simsiam", **data, projection_dim=8, prediction_dim=4, **tiny
        ),
        "dino": TrainConfig.for_method("dino", **data, out_dim=16, local_crops=1, **tiny),
    }


@pytest.mark.parametrize("name", REGISTERED)
def test_every_method_logs_its_declared_pretext_measure(name, configs):
    """The spec's pretext metric is what `sslx viz ablation` reads from metrics.jsonl: a
    renamed metric must fail here, not vanish from the pretext curves."""
    method = build_method(configs[name])
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    batch = Batch(images.permute(0, 2, 3, 1), torch.arange(4), torch.tensor([0, 1, 2, 0]))
    config = configs[name]
    for v, spec in enumerate(method.views(config.crop, 32)):  # multi-view methods
        rows = [draw_view(0, 0, i, v, 32, 32, spec)[1] for i in range(4)]
        batch.views.append(View(images, torch.from_numpy(np.stack(rows))))
    output = method(images, batch)
    assert SPECS[name].pretext.metric in output.metrics
    chance = SPECS[name].pretext.chance
    assert chance is None or 0 < chance < 1
