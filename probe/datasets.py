"""The kinds of labelled data `sslx probe` reads, torch-free for `sslx probe --help`.

`sslx.probe.data` reads them (ImageFolder trees, CIFAR-10/100 files).
"""

DATASETS = ("imagefolder", "cifar10", "cifar100")
