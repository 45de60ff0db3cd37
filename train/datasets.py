"""The kinds of labelled data sslx reads, torch-free for `--help` (`sslx.train.labelled`
reads them: ImageFolder trees, CIFAR-10/100 files)."""

DATASETS = ("imagefolder", "cifar10", "cifar100")
