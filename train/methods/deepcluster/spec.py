"""DeepCluster's spec: classify k-means clusters of the network's own features
(docs/deepcluster.md)."""

from __future__ import annotations

from dataclasses import dataclass

from sslx import settings
from sslx.settings import declare
from sslx.train.methods.spec import MethodSpec, OptimDefaults, Pretext

# `sslx.common.kmeans.BACKENDS`, spelled here so that --help stays torch-free (a test
# keeps the two equal).
KMEANS_BACKENDS = ("auto", "faiss", "torch")


@dataclass(frozen=True)
class DeepClusterOptions:
    clusters: int = declare(10000, help="k, the number of k-means clusters.", type=int, low=2)
    pca_dim: int = declare(256, help="PCA-whitening dimension before k-means.", type=int, low=1)
    kmeans_iterations: int = declare(20, help="k-means iterations per epoch.", type=int, low=1)
    kmeans_backend: str = declare(
        "auto", help="k-means on faiss, torch or auto.", type=str, choices=KMEANS_BACKENDS
    )
    pca_fit_rows: int = declare(
        0, help="Fit the PCA on this many random samples (0: all).", type=int, low=0
    )

    def __post_init__(self) -> None:
        settings.check(self)


SPEC = MethodSpec(
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
    pretext=Pretext("cluster_accuracy"),
    plugin="DeepCluster",
    docs="docs/deepcluster.md",
    options=DeepClusterOptions,
)
