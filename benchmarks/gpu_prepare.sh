#!/usr/bin/env bash
# What the GPU machine lacks, as pure-Python wheels in .whl/ (git-ignored), downloaded here
# before any GPU time is spent; benchmarks/gpu_check.sh installs them there. Its image has
# torch, numpy, OpenCV, click, pyarrow, PyYAML, scikit-learn, tensorboard and pytest, but
# not these. faiss is left out on purpose: faiss-gpu needs CUDA 12 libraries (about
# 790 MB) that the CUDA 13 machine lacks, so DeepCluster's k-means runs on torch there.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(webdataset==1.0.2 braceexpand==0.1.7)  # the shard reader and its one dependency
mkdir -p .whl
"${PY:-python3}" -m pip download -q --no-deps --only-binary=:all: -d .whl "${WHEELS[@]}"
ls -l .whl/*.whl
echo "then, on the GPU machine: bash benchmarks/gpu_check.sh (carry .whl, timeout 540 s)"
