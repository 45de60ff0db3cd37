"""Stage 3: linear probes on the conv taps of frozen networks (`sslx probe`, `sslx viz`).

- `data`: ImageFolder trees and CIFAR-10/100 files, held-out validation splits, transforms.
- `heads`: per-tap max-pooling to ~9-10k dimensions and the BatchNorm + linear probes.
- `features`: the frozen trunk, streamed per batch or extracted once into a float16 cache.
- `run`: joint training of all probes on the sum of their losses, evaluation, resume.
- `report`: markdown / JSON / CSV tables and the accuracy-per-layer plot.
- `networks`: the frozen networks to probe (checkpoints, the untrained "Random" row).
- `viz`: conv1 filters as an image grid.
- `ablation`: the augmentation ablation table (the paper's Table 3) from probe results.
- `command`: `sslx probe` and `sslx viz`, torch-free until they run (`datasets` names
  the kinds of data for their --help).
"""
