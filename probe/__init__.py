"""Stage 3: linear probes on the conv taps of frozen networks (`sslx probe`, `sslx viz`).

- `data`: ImageFolder trees and CIFAR-10/100 files, held-out validation splits, transforms.
- `heads`: per-tap max-pooling to ~9-10k dimensions and the BatchNorm + linear probes.
- `features`: the frozen trunk, streamed per batch or extracted once into a float16 cache
  (`NetworkCaches`: a network's caches, shared by every evaluation).
- `run`: joint training of all probes on the sum of their losses, evaluation, resume.
- `neighbours`: weighted kNN (DINO's) and k-means cluster quality per layer (`--eval`).
- `evaluate`: one network through the evaluations `--eval` names, with their states.
- `report`: markdown / JSON / CSV tables and the accuracy-per-layer plot
  (`evaluation_report`: the kNN and cluster tables, CSV rows and plots).
- `html`: report.html, the tables, plot, filters and settings as one self-contained page.
- `networks`: the frozen networks to probe (checkpoints, the untrained "Random" row).
- `viz`: conv1 filters as an image grid.
- `retrieval`: each fixed query's nearest training images at one tap, per network, as a
  picture (`sslx viz neighbours`; its flags in `retrieval_command`).
- `inputs`: the networks and labelled split `sslx probe` and `sslx viz neighbours` read.
- `ablation`: the augmentation ablation table (the paper's Table 3) from probe results.
- `references`: published numbers with their sources (`--reference`), declared once;
  `reference_report`: them beside ours in the reports, ours minus theirs.
- `command`: `sslx probe` and `sslx viz`, torch-free until they run (`datasets` names
  the kinds of data for their --help).
"""
