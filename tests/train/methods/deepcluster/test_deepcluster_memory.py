"""DeepCluster's clustering step never holds all N x width features on the device."""

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from sslx.train.alexnet import AlexNet
from sslx.train.config import TrainConfig
from sslx.train.methods.base import EpochContext
from sslx.train.methods.deepcluster.method import DeepCluster
from sslx.train.methods.deepcluster.shard_index import ShardIndex

WIDTH, BATCH = 32, 16


class ShapeRecorder(TorchDispatchMode):
    """Records the shape of every float32/float64 tensor that any op produces."""

    def __init__(self) -> None:
        super().__init__()
        self.shapes: set[tuple[int, ...]] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.dtype in (torch.float32, torch.float64):
                self.shapes.add(tuple(t.shape))
        return out


def test_clustering_step_holds_at_most_one_batch_of_full_width_features(shards, tmp_path):
    config = TrainConfig.for_method(
        "deepcluster",
        shards=str(shards),
        input_size=64,
        conv1_stride=4,
        classifier_width=WIDTH,
        batch_size=BATCH,
        epochs=1,
        clusters=12,
        pca_dim=16,
        kmeans_backend="torch",
    )
    method = DeepCluster(AlexNet(config.model), config.method_options)
    method._shards = ShardIndex(shards)
    ctx = EpochContext(0, torch.device("cpu"), config, tmp_path, data=None)
    with ShapeRecorder() as recorder:
        labels = method._cluster(ctx, tmp_path / "clusters.npy")
    assert labels.shape == (240,) and len(np.unique(labels)) > 1
    # Allowed: the covariance and the network's own weights (and their transposes).
    allowed = {(WIDTH, WIDTH)} | {
        s for p in method.parameters() if p.dim() == 2 for s in (p.shape, p.T.shape)
    }
    full_width = {
        s
        for s in recorder.shapes
        if len(s) == 2 and s[1] == WIDTH and s[0] > BATCH and s not in allowed
    }
    assert not full_width, f"full-width feature tensors of more than one batch: {full_width}"
    # The recorder sees the step's tensors: the batches of features and the covariance.
    assert (BATCH, WIDTH) in recorder.shapes and (WIDTH, WIDTH) in recorder.shapes
