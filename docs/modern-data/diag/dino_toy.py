"""DINO on the toy set of the tests, per epoch: the loss, the encoder's spread, and what
decides whether the teacher collapses: its logits' spread over a fixed batch, its output
entropy after centring, and the centre's norm (docs/modern.md, "Collapse on the toy set").

    python docs/modern-data/diag/dino_toy.py '{"optimizer": "sgd", "lr": 0.03}'

The argument sets TrainConfig.for_method values (and "patches", the toy set's size) over
the toy defaults below (those of
tests/train/ssl/test_multiview_methods.py: 240 patches of the tests' synthetic photo,
batch 32, 6 epochs, AlexNet at 32 px, out_dim 64, 2 local views).
"""

import json
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from sslx.datagen import AugmentConfig, GenerateConfig, generate
from sslx.train import loop
from sslx.train.config import RunOptions, TrainConfig


def toy_shards(root: Path, n: int) -> Path:
    """tests/conftest.py's photo and, for n = 240, tests/train/conftest.py's patches."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:240, 0:320].astype(np.float32)
    img = np.stack(
        [
            127 + 100 * np.sin(x / 7.0) * np.cos(y / 11.0),
            127 + 100 * np.sin((x + y) / 23.0),
            127 + 60 * np.cos(x / 3.0) + rng.normal(0, 20, (240, 320)),
        ],
        axis=2,
    )
    cv2.imwrite(str(root / "photo.png"), np.clip(img, 0, 255).astype(np.uint8))
    config = GenerateConfig(
        n=n, size=64, seed=3, jpeg_quality=90, shard_size=50, augment=AugmentConfig()
    )
    generate(config, [root / "photo.png"], root / "shards", workers=1, progress=False)
    return root / "shards"


def main() -> None:
    root = Path(tempfile.mkdtemp())
    values = dict(input_size=32, conv1_stride=2, classifier_width=32, batch_size=32, epochs=6)
    values |= dict(warmup_epochs=1, shuffle_buffer=32, out_dim=64, local_crops=2)
    values |= dict(warmup_teacher_temperature_epochs=2)
    values |= json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    patches = values.pop("patches", 240)  # not a training setting: the toy set's size
    config = TrainConfig.for_method("dino", shards=str(toy_shards(root, patches)), **values)
    cls = type(loop.build_method(config))
    fixed: dict[str, torch.Tensor] = {}
    on_epoch_end, forward = cls.on_epoch_end, cls.forward

    def watch(self, images, batch):  # keep the first batch's first global view
        fixed.setdefault("views", self.view_images(batch)[0].detach())
        return forward(self, images, batch)

    def report(self, ctx):
        on_epoch_end(self, ctx)
        with torch.no_grad():
            t = self.teacher["head"](self.teacher["backbone"].trunk(fixed["views"])).float()
            p = torch.softmax((t - self.centre) / self.teacher_temperature(ctx.epoch), dim=1)
        line = {
            "epoch": ctx.epoch + 1,
            "teacher_logit_spread": t.std(0).mean().item(),  # over the batch, per output
            "teacher_entropy": -(p * p.clamp_min(1e-12).log()).sum(1).mean().item(),
            "teacher_top_outputs": len(set(p.argmax(1).tolist())),  # distinct winners
            "centre_norm": self.centre.norm().item(),
        }
        print(json.dumps({k: round(v, 4) for k, v in line.items()}))

    cls.forward, cls.on_epoch_end = watch, report
    print(json.dumps(values))
    loop.train(config, root / "run", RunOptions(workers=0, log_every=7, quiet=True))
    for text in (root / "run" / "metrics.jsonl").read_text().splitlines():
        r = json.loads(text)
        if r.get("event") == "epoch_end":
            print("epoch", r["epoch"], "embedding_std", round(r["embedding_std"], 3))
        elif "loss" in r:
            keys = ("loss", "view_agreement", "teacher_entropy", "lr")
            print({k: round(r[k], 4) for k in keys if k in r})
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
