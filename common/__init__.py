"""What every stage may use, and none owns: train and probe import it without reaching
into each other, and it imports no stage.

- `sampling`: the RandomResizedCrop rule and its settings (`CropConfig`); torch-free.
- `crops`: the one decode-and-crop path (crop boxes from the seed streams, reduced-size
  JPEG decoding, resize, flip).
- `datasets`: the kinds of labelled data and the settings that choose one; torch-free.
- `labelled`: their readers (ImageFolder, CIFAR without unpickling code, held-out splits).
- `optim`: the optimiser block's settings (`OptimConfig`), shared by train and probe.
- `device`: the device choice and the loader-worker defaults.
- `timing`: the projected time of a run or a probe.
- `kmeans`: k-means on FAISS or in torch and the choice between them (DeepCluster's
  clustering step, the probe's cluster evaluation).
- `batching`: positions in batches, each rank's share; `lazy`: exports imported on use.
"""
