"""DeepCluster (Caron, Bojanowski, Joulin & Douze, ECCV 2018): k-means pseudo-labels.

Every epoch, before training:

1. the network, in eval mode, embeds every sample (the whole patch resized to the
   input size, no augmentation) with fc7 before its final ReLU, in global index order;
2. the embeddings are PCA-whitened to 256 dimensions, L2-normalised and clustered by
   k-means (20 iterations, no subsampling, a seed that changes per epoch), and every
   sample is assigned to its nearest centroid (`clustering.py`);
3. the classification head is re-initialised;
4. the epoch draws N samples uniformly over the non-empty clusters (the reference's
   UnifLabelSampler) and trains on them with the cluster as the label.

The reference trains the head with its own SGD without momentum, created afresh every
epoch; here it is its own parameter group with momentum 0 (same update, no state).
Under torchrun each rank embeds its stretch of the samples into streamed statistics and a
float16 copy in host memory, all ranks agree on one PCA, each projects its own rows, and
rank 0 gathers the 256-d projections, clusters them and broadcasts the labels. The
assignments of every epoch are saved as `RUN/clusters/epoch_NNNN.npy` (int32); a run
resumed mid-epoch reloads that epoch's file instead of clustering again, so it trains on
exactly the same labels.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from sslx import seeds
from sslx.atomic import atomic_write
from sslx.common.batching import rank_share
from sslx.common.kmeans import resolve_backend
from sslx.common.timing import format_seconds
from sslx.errors import InputError, first_line
from sslx.train.backbone import Backbone
from sslx.train.batches import Batch
from sslx.train.evaluation import evaluation_batches
from sslx.train.losses import accuracy, cross_entropy
from sslx.train.methods.base import EpochContext, Method, StepOutput
from sslx.train.methods.deepcluster.clustering import ClusterResult, cluster_step
from sslx.train.methods.deepcluster.shard_index import EpochDataset, ShardIndex
from sslx.train.methods.deepcluster.spec import SPEC, DeepClusterOptions
from sslx.train.stop import StopRequested

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


def load_clusters(path: Path, n: int, k: int) -> np.ndarray:
    """An epoch's saved assignments: n labels in [0, k); a damaged file is a one-line error."""
    try:
        labels = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError) as e:
        raise InputError(f"{path} is damaged ({first_line(e)})") from None
    ok = labels.shape == (n,) and np.issubdtype(labels.dtype, np.integer)
    if not ok or (n and (labels.min() < 0 or labels.max() >= k)):
        raise InputError(f"{path} is damaged: not {n} cluster labels in [0, {k})")
    return labels.astype(np.int64)


def suggested_clusters(num_samples: int) -> int:
    """About 20 samples per cluster on small data (the paper has ~128 on ImageNet)."""
    return max(2, num_samples // 20)


class DeepCluster(Method):
    """The DeepCluster plug-in: a linear head on fc7 classifies each sample's cluster."""

    spec = SPEC
    options: DeepClusterOptions

    def __init__(self, backbone: Backbone, options: DeepClusterOptions | None = None) -> None:
        super().__init__(backbone, options)
        self.k = self.options.clusters
        self.head = nn.Linear(backbone.embed_dim, self.k)
        self.assignments: np.ndarray | None = None
        self._shards: ShardIndex | None = None

    def check_data(self, num_samples: int) -> None:
        if self.k > num_samples // 2:
            raise InputError(
                f"--clusters {self.k} is more than half of the {num_samples} samples; "
                f"try --clusters {suggested_clusters(num_samples)} (about 20 samples per cluster)"
            )

    def forward(self, images: torch.Tensor, batch: Batch) -> StepOutput:
        logits = self.head(self.backbone(images))
        metrics = {SPEC.pretext.metric: accuracy(logits, batch.label)}
        return StepOutput(cross_entropy(logits, batch.label), metrics)

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

    def check_resume(self, out: Path, epoch: int, step_in_epoch: int, num_samples: int) -> None:
        path = clusters_path(out, epoch)
        if step_in_epoch > 0 and path.exists():
            load_clusters(path, num_samples, self.k)

    def on_epoch_start(self, ctx: EpochContext) -> None:
        if self._shards is None:
            self._shards = ShardIndex(ctx.config.shards)
        path = clusters_path(ctx.out, ctx.epoch)
        if ctx.start_step > 0:  # resumed mid-epoch: this epoch's own clusters
            if not path.exists():
                raise InputError(
                    f"cannot resume mid-epoch: this epoch's clusters {path} are missing"
                )
            self.assignments = load_clusters(path, self._shards.num_samples, self.k)
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
        """Embed this rank's stretch of the samples and run the clustering step over ranks
        (`clustering.cluster_step`); every rank gets every sample's label."""
        dist, o = ctx.dist, self.options
        n, w = self._shards.num_samples, dist.world_size
        shares = [rank_share(n, r, w) for r in range(w)]
        backend = resolve_backend(o.kmeans_backend, ctx.device) if dist.is_main else None
        features = self._reported(self.embed_batches(np.asarray(shares[dist.rank]), ctx), ctx)
        labels, result = cluster_step(
            features,
            [len(share) for share in shares],
            self.k,
            width=self.backbone.embed_dim,
            device=ctx.device,
            batch=ctx.config.optim.batch_size,
            rank=dist.rank,
            pca_dim=o.pca_dim,
            iterations=o.kmeans_iterations,
            seed=seeds.int_seed(ctx.config.seed, "clustering", ctx.epoch, 2) % 2**31,
            backend=backend,
            pca_fit_rows=o.pca_fit_rows,
        )
        if dist.is_main:
            self._log(ctx, path, result)
        if ctx.verbose:
            print(
                f"sslx: clustering step {format_seconds(result.seconds_features)} of features, "
                f"{format_seconds(result.seconds_pca)} of PCA, "
                f"{format_seconds(result.seconds_kmeans)} of k-means",
                file=sys.stderr,
            )
        return labels

    def _reported(self, batches: Iterator[torch.Tensor], ctx: EpochContext):
        """The feature pass with its own progress bar (it can take minutes before the first
        step), then a line for the PCA and k-means that follow; stops at a stop request."""
        share = rank_share(self._shards.num_samples, ctx.dist.rank, ctx.dist.world_size)
        total = -(-len(share) // ctx.config.optim.batch_size)
        desc = f"epoch {ctx.epoch + 1}/{ctx.config.optim.epochs} clustering: features"
        with tqdm(total=total, desc=desc, unit="batch", disable=not ctx.verbose) as bar:
            for x in batches:
                if ctx.stop_requested():
                    raise StopRequested
                yield x
                bar.update(1)
        if ctx.verbose:
            o = self.options
            print(
                f"sslx: clustering: PCA to {o.pca_dim} dims, then k-means into {self.k} "
                f"clusters ({o.kmeans_iterations} iterations)",
                file=sys.stderr,
            )

    def embed_batches(self, indices: np.ndarray, ctx: EpochContext) -> Iterator[torch.Tensor]:
        """fc7 before its ReLU, eval mode, the central 224/256 of each patch: one
        (batch, width) float32 tensor on the device per batch of `indices`, in order."""
        dataset = EpochDataset(
            self._shards,
            indices,
            input_size=ctx.config.model.input_size,
            crop=None,
            centre_ratio=EMBED_CENTRE,
        )
        size = ctx.config.optim.batch_size
        for batch in evaluation_batches(self, dataset, range(len(indices)), size, ctx):
            if batch.bad:
                raise InputError(f"{batch.errors[0]}; DeepCluster needs every sample to cluster")
            with torch.no_grad(), ctx.autocast:  # the step's arithmetic: bf16 on CUDA
                features = self.backbone(batch.image, final_relu=False).float()
            yield features

    def _log(self, ctx: EpochContext, path: Path, result: ClusterResult) -> None:
        """Save the assignments (int32) and log NMI vs the last epoch and cluster statistics."""
        from sklearn.metrics import normalized_mutual_info_score

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, "wb") as f:
            np.save(f, result.assignments.astype(np.int32))
        previous = clusters_path(ctx.out, ctx.epoch - 1)
        nmi = None
        if ctx.epoch > 0 and previous.exists():
            n = len(result.assignments)
            try:  # it only feeds this log: a damaged one costs the figure, not the run
                before = load_clusters(previous, n, self.k)
                nmi = float(normalized_mutual_info_score(before, result.assignments))
            except InputError as e:
                print(f"sslx: nmi_previous not logged: {e}", file=sys.stderr)
        sizes = np.bincount(result.assignments, minlength=self.k)
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
            "seconds_features": result.seconds_features,
            "seconds_pca": result.seconds_pca,
            "seconds_kmeans": result.seconds_kmeans,
            "kmeans_backend": result.backend.name,
            "kmeans_device": str(result.backend.device),
            "kmeans_backend_reason": result.backend.reason,
        }
        if ctx.log is not None:
            ctx.log.write(record, ctx.step, prefix="clustering")
