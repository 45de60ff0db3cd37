"""What `sslx train` knows about each method without importing torch.

A `MethodSpec` is a method's name, one-line summary, paper defaults (`OptimDefaults`)
and own command-line options (`MethodOption`). The CLI builds `sslx train --help` and
the run config from `SPECS`; each `Method` class takes its name, defaults and options
from its spec, so they are written down once, here. Every default comes from the
method's paper or reference code, named in `OptimDefaults.reference`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OptimDefaults:
    """Paper defaults for a method: optimiser settings and step decay of the learning rate.

    `momentum` is SGD's momentum, or Adam's beta1 for methods that use Adam.
    """

    batch_size: int
    epochs: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    lr_milestones: tuple[int, ...] = ()
    lr_gamma: float = 0.1
    sobel: bool = False
    input_size: int = 224  # the model's input size in pixels
    reference: str = ""


@dataclass(frozen=True)
class MethodOption:
    """A method-specific command-line option (`--name`), stored in the run config."""

    default: Any
    help: str
    type: type = int


@dataclass(frozen=True)
class MethodSpec:
    name: str
    summary: str  # a short line (under 65 characters), for `sslx train --help`
    defaults: OptimDefaults
    options: dict[str, MethodOption] = field(default_factory=dict)
    needs_shards: bool = True  # False: the method reads its own (labelled) data


BIGAN = MethodSpec(
    name="bigan",
    summary="fool a joint discriminator of (x, E(x)) vs (G(z), z) pairs",
    # The reference's full-ImageNet run: Adam (beta1 0.5, the reference's --momentum),
    # lr 2e-4, L2 weight decay 2.5e-5 except on BatchNorm gains, batch 128, 50 epochs at
    # constant lr, then 50 epochs of exponential decay to 1% (per-epoch milestones).
    defaults=OptimDefaults(
        batch_size=128,
        epochs=100,
        lr=2e-4,
        momentum=0.5,
        weight_decay=2.5e-5,
        nesterov=False,
        lr_milestones=tuple(range(50, 100)),
        lr_gamma=0.01 ** (1 / 50),
        input_size=64,  # the encoder sees 64 px crops (README ImageNet args: --crop_size 64)
        reference="jeffdonahue/bigan README.md (ImageNet, 1000 classes) and train_gan.py",
    ),
    options={
        "latent_dim": MethodOption(200, "Dimensions of z (uniform on [-1, 1])."),
        "gan_size": MethodOption(64, "Side of G's images and D's input; E sees --size."),
        "gan_width": MethodOption(64, "Base channel count of G and D (the reference's 64)."),
    },
)

DEEPCLUSTER = MethodSpec(
    name="deepcluster",
    summary="classify k-means clusters of the network's own features",
    # facebookresearch/deepcluster main.py + main.sh: lr 0.05, weight decay 10^-5,
    # momentum 0.9, batch 256, k = 10000, Sobel, constant lr. main.py's default is 200
    # epochs; the paper trains AlexNet for 500.
    defaults=OptimDefaults(
        batch_size=256,
        epochs=200,
        lr=0.05,
        momentum=0.9,
        weight_decay=1e-5,
        sobel=True,
        reference="facebookresearch/deepcluster main.py, main.sh",
    ),
    options={
        "clusters": MethodOption(10000, "k, the number of k-means clusters."),
        "pca_dim": MethodOption(256, "PCA-whitening dimension before k-means."),
        "kmeans_iterations": MethodOption(20, "k-means iterations per epoch."),
        "kmeans_backend": MethodOption("auto", "k-means on faiss, torch or auto.", str),
        "pca_fit_rows": MethodOption(0, "Fit the PCA on this many random samples (0: all)."),
    },
)

ROTNET = MethodSpec(
    name="rotnet",
    summary="predict which of the 4 right-angle rotations was applied",
    # The reference ImageNet AlexNet config: 192 images (x4 rotations) per batch, SGD
    # with Nesterov momentum, 50 epochs. Its 'lr': 0.1 is never used: LUT_lr
    # [(15, 0.01), (30, 0.001), (45, 0.0001), (50, 0.00001)] is applied before every
    # epoch, epoch 0 included (algorithms/Algorithm.py solve -> adjust_learning_rates),
    # so the run uses 0.01, divided by 10 at epochs 15, 30 and 45.
    defaults=OptimDefaults(
        batch_size=192,
        epochs=50,
        lr=0.01,
        momentum=0.9,
        weight_decay=5e-4,
        nesterov=True,
        lr_milestones=(15, 30, 45),
        lr_gamma=0.1,
        reference="gidariss/FeatureLearningRotNet config/ImageNet_RotNet_AlexNet.py",
    ),
)

SUPERVISED = MethodSpec(
    name="supervised",
    summary="labels from an ImageFolder or CIFAR (the paper's reference row)",
    # torchvision's reference recipe for AlexNet on ImageNet (references/classification):
    # SGD, lr 0.01, momentum 0.9, weight decay 1e-4, 90 epochs, lr ÷10 every 30 epochs.
    # Its batch is 8 GPUs x 32 = 256.
    defaults=OptimDefaults(
        batch_size=256,
        epochs=90,
        lr=0.01,
        momentum=0.9,
        weight_decay=1e-4,
        lr_milestones=(30, 60),
        lr_gamma=0.1,
        reference="pytorch/vision references/classification (alexnet)",
    ),
    options={
        "dataset": MethodOption("imagefolder", "imagefolder, cifar10 or cifar100.", str),
        "data_dir": MethodOption("", "The labelled training data (as for sslx probe).", str),
        "val_dir": MethodOption("", "A separate validation tree; none is held out then.", str),
        "val_fraction": MethodOption(
            0.1, "Fraction of each class held out (never trained on), as in sslx probe.", float
        ),
        "split_seed": MethodOption(0, "Seed of the held-out split (match sslx probe's).", int),
        "patience": MethodOption(
            0,
            "Stop when the held-out top-1 (val_top1, measured after every epoch) has not "
            "improved for this many epochs; 0 runs all --epochs.",
            int,
        ),
    },
    needs_shards=False,
)

# In the order the method modules used to register (it orders their options in --help).
SPECS: dict[str, MethodSpec] = {s.name: s for s in (BIGAN, DEEPCLUSTER, ROTNET, SUPERVISED)}
