"""The kinds of labelled data sslx reads, torch-free for `--help` (`sslx.train.labelled`
reads them: ImageFolder trees, CIFAR-10/100 files)."""

CIFAR_DATASETS = ("cifar10", "cifar100")
DATASETS = ("imagefolder", *CIFAR_DATASETS)


def eval_crop_ratio(dataset: str) -> float:
    """The evaluation view's centre crop as a fraction of the short side: ImageNet's
    Resize 256 + CenterCrop 224 for folders, the whole 32 px image for CIFAR."""
    return 1.0 if dataset in CIFAR_DATASETS else 0.875
