"""DeepCluster (Caron, Bojanowski, Joulin & Douze, ECCV 2018): k-means pseudo-labels.

Every epoch, before training:

1. the network, in eval mode, embeds every sample (the whole patch resized to the
   input size, no augmentation) with fc7 before its final ReLU, in global index order;
2. the embeddings are PCA-whitened to 256 dimensions, L2-normalised and clustered by
   k-means (20 iterations, no subsampling, a seed that changes per epoch), and every
   sample is assigned to its nearest centroid (`sslx.train.clustering`);
3. the classification head is re-initialised;
4. the epoch draws N samples uniformly over the non-empty clusters (the reference's
   UnifLabelSampler) and trains on them with the cluster as the label.

The reference trains the head with its own SGD without momentum, created afresh every
epoch; here it is its own parameter group with momentum 0 (same update, no state).
Under torchrun each rank embeds its stretch of the samples, rank 0 gathers them and
clusters, and the labels are broadcast. The assignments of every epoch are saved as
`RUN/clusters/epoch_NNNN.npy` (int32); a run resumed mid-epoch reloads that epoch's
file instead of clustering again, so it trains on exactly the same labels.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sslx import seeds
from sslx.errors import InputError
from sslx.train import distributed
from sslx.train.alexnet import AlexNet
from sslx.train.clustering import BACKENDS, cluster, cluster_sizes
from sslx.train.indexed import EpochDataset, ShardIndex, epoch_loader
from sslx.train.losses import accuracy, cross_entropy
from sslx.train.methods.base import (
    EpochContext,
    Method,
    MethodOption,
    OptimDefaults,
    StepOutput,
    register,
)

CLUSTERS_DIR = "clusters"
# The clustering features see Resize(256) + CenterCrop(224) of each patch
# (facebookresearch/deepcluster main.py, the dataset transform for compute_features).
EMBED_CENTRE = 224 / 256


def uniform_label_draws(assignments: np.ndarray, n: int, seed: int, epoch: int) -> np.ndarray:
    """n sample indices, as many from every non-empty cluster, shuffled (UnifLabelSampler).

    Each non-empty cluster gives n // (non-empty clusters) + 1 samples, drawn with
    replacement only when the cluster is not larger than that; the concatenation is
    shuffled and cut to n.
    """
    rng = seeds.rng(seed, "clustering", epoch, 0)
    order = np.argsort(assignments, kind="stable")
    sizes = np.bincount(assignments)
    members = np.split(order, np.cumsum(sizes)[:-1])
    members = [m for m in members if len(m)]
    per_cluster = n // len(members) + 1
    draws = np.concatenate(
        [rng.choice(m, per_cluster, replace=len(m) <= per_cluster) for m in members]
    )
    rng.shuffle(draws)
    return draws[:n]


def clusters_path(out: Path, epoch: int) -> Path:
    return Path(out) / CLUSTERS_DIR / f"epoch_{epoch:04d}.npy"


def suggested_clusters(num_samples: int) -> int:
    """About 20 samples per cluster on small data (the paper has ~128 on ImageNet)."""
    return max(2, num_samples // 20)


@register
class DeepCluster(Method):
    """DeepCluster: classify k-means clusters of the network's own features, every epoch."""

    name = "deepcluster"
    # facebookresearch/deepcluster main.py + main.sh: lr 0.05, weight decay 10^-5,
    # momentum 0.9, batch 256, k = 10000, Sobel, constant lr. main.py's default is 200
    # epochs; the paper trains AlexNet for 500.
    defaults = OptimDefaults(
        batch_size=256,
        epochs=200,
        lr=0.05,
        momentum=0.9,
        weight_decay=1e-5,
        sobel=True,
        reference="facebookresearch/deepcluster main.py, main.sh",
    )
    options = {  # noqa: RUF012  (class-level registry of options, as in the base)
        "clusters": MethodOption(10000, "k, the number of k-means clusters."),
        "pca_dim": MethodOption(256, "PCA-whitening dimension before k-means."),
        "kmeans_iterations": MethodOption(20, "k-means iterations per epoch."),
        "kmeans_backend": MethodOption("auto", "k-means on faiss, torch or auto.", str),
        "pca_fit_rows": MethodOption(0, "Fit the PCA on this many random samples (0: all)."),
    }

    def __init__(self, backbone: AlexNet, options: dict) -> None:
        super().__init__(backbone, options)
        o = self.method_options
        if o["kmeans_backend"] not in BACKENDS:
            raise InputError(
                f"--kmeans-backend must be one of {', '.join(BACKENDS)} "
                f"(got {o['kmeans_backend']!r})"
            )
        if o["clusters"] < 2 or o["pca_dim"] < 1 or o["kmeans_iterations"] < 1:
            raise InputError("--clusters must be >= 2, --pca-dim and --kmeans-iterations >= 1")
        self.k = int(o["clusters"])
        self.head = nn.Linear(backbone.embed_dim, self.k)
        self.assignments: np.ndarray | None = None
        self._shards: ShardIndex | None = None

    def check_data(self, num_samples: int) -> None:
        if self.k > num_samples // 2:
            raise InputError(
                f"--clusters {self.k} is more than half of the {num_samples} samples; "
                f"try --clusters {suggested_clusters(num_samples)} (about 20 samples per cluster)"
            )

    def forward(self, images: torch.Tensor, batch: dict) -> StepOutput:
        logits = self.head(self.backbone(images))
        labels = batch["label"]
        metrics = {"cluster_accuracy": accuracy(logits, labels)}
        return StepOutput(cross_entropy(logits, labels), metrics)

    def parameter_groups(self) -> list[dict]:
        head = list(self.head.parameters())
        trunk = [p for p in self.backbone.parameters() if p.requires_grad]
        return [{"params": trunk}, {"params": head, "momentum": 0.0, "nesterov": False}]

    @torch.no_grad()
    def reset_head(self, seed: int, epoch: int) -> None:
        """N(0, 0.01) weights and zero bias, from (seed, epoch): the same on every rank."""
        g = torch.Generator().manual_seed(seeds.int_seed(seed, "clustering", epoch, 1))
        self.head.weight.copy_(torch.empty(self.head.weight.shape).normal_(0, 0.01, generator=g))
        self.head.bias.zero_()

    def on_epoch_start(self, ctx: EpochContext) -> None:
        if self._shards is None:
            self._shards = ShardIndex(ctx.config.shards)
        path = clusters_path(ctx.out, ctx.epoch)
        if ctx.extra["start_step"] > 0:  # resumed mid-epoch: this epoch's own clusters
            if not path.exists():
                raise InputError(
                    f"cannot resume mid-epoch: this epoch's clusters {path} are missing"
                )
            self.assignments = np.load(path).astype(np.int64)
            return
        self.assignments = self._cluster(ctx, path)
        self.reset_head(ctx.config.seed, ctx.epoch)

    def epoch_data(self, ctx: EpochContext) -> EpochDataset:
        n = len(self.assignments)
        draws = uniform_label_draws(self.assignments, n, ctx.config.seed, ctx.epoch)
        return EpochDataset(
            self._shards,
            draws,
            self.assignments[draws],
            input_size=ctx.config.model.input_size,
            crop=ctx.config.crop,
            seed=ctx.config.seed,
            epoch=ctx.epoch,
        )

    def _cluster(self, ctx: EpochContext, path: Path) -> np.ndarray:
        dist = ctx.extra["dist"]
        n = self._shards.num_samples
        t0 = time.perf_counter()
        lo, hi = dist.rank * n // dist.world_size, (dist.rank + 1) * n // dist.world_size
        local = self.embed(np.arange(lo, hi), ctx)
        features = distributed.gather_rows(local, [
            (r + 1) * n // dist.world_size - r * n // dist.world_size
            for r in range(dist.world_size)
        ])  # fmt: skip
        seconds_features = time.perf_counter() - t0
        labels = torch.zeros(n, dtype=torch.int64, device=ctx.device)
        if dist.is_main:
            o = self.method_options
            result = cluster(
                features,
                self.k,
                pca_dim=o["pca_dim"],
                iterations=o["kmeans_iterations"],
                seed=seeds.int_seed(ctx.config.seed, "clustering", ctx.epoch, 2) % 2**31,
                backend=o["kmeans_backend"],
                pca_fit_rows=o["pca_fit_rows"],
            )
            labels.copy_(torch.from_numpy(result.assignments))
            self._log(ctx, path, result, seconds_features)
        del features
        return distributed.broadcast(labels).cpu().numpy()

    @torch.no_grad()
    def embed(self, indices: np.ndarray, ctx: EpochContext) -> torch.Tensor:
        """fc7 before its ReLU, eval mode, central 224/256 of each patch: (len(indices), width)."""
        batch = ctx.config.optim.batch_size
        dataset = EpochDataset(
            self._shards, indices, input_size=ctx.config.model.input_size, crop=None,
            centre_ratio=EMBED_CENTRE,
        )
        n = len(indices)
        batches = [list(range(a, min(a + batch, n))) for a in range(0, n, batch)]
        loader = epoch_loader(dataset, batches, ctx.workers, ctx.device.type == "cuda")
        was_training = self.backbone.training
        self.backbone.eval()
        out = []
        for b in loader:
            if b["bad"]:
                raise InputError(f"{b['errors'][0]}; DeepCluster needs every sample to cluster")
            images = b["image"].to(ctx.device, non_blocking=True).permute(0, 3, 1, 2)
            out.append(self.backbone(images, final_relu=False).float())
        self.backbone.train(was_training)
        width = self.backbone.embed_dim
        return torch.cat(out) if out else torch.zeros(0, width, device=ctx.device)

    def _log(self, ctx: EpochContext, path: Path, result, seconds_features: float) -> None:
        """Save the assignments (int32) and log NMI vs the last epoch and cluster statistics."""
        from sklearn.metrics import normalized_mutual_info_score

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npy")
        np.save(tmp, result.assignments.astype(np.int32))
        tmp.replace(path)
        previous = clusters_path(ctx.out, ctx.epoch - 1)
        nmi = None
        if ctx.epoch > 0 and previous.exists():
            nmi = float(normalized_mutual_info_score(np.load(previous), result.assignments))
        sizes = cluster_sizes(result.assignments, self.k)
        filled = sizes[sizes > 0]
        record = {
            "event": "clustering",
            "epoch": ctx.epoch + 1,
            "nmi_previous": nmi,
            "kmeans_objective": result.objective,
            "empty_clusters": int((sizes == 0).sum()),
            "cluster_size_min": int(filled.min()),
            "cluster_size_median": float(np.median(filled)),
            "cluster_size_max": int(filled.max()),
            "seconds_features": seconds_features,
            "seconds_pca": result.seconds_pca,
            "seconds_kmeans": result.seconds_kmeans,
            "kmeans_backend": result.backend,
        }
        if ctx.log is not None:
            ctx.log.write(record, ctx.step, prefix="clustering")
