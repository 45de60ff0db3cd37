#!/bin/bash
# Pilot rows of the modern-methods experiment (issue 25): preset all, seed 0, one core.
set -u
cd /work/exp
SSLX=/work/main/.venv/bin/sslx
NET="--size 32 --conv1-stride 2 --classifier-width 512"
FAST="--precision bf16 --channels-last"
PROBE="--dataset cifar10 --data-dir .cache/data/cifar10/train --cache-features --layers conv1,conv2,conv3,conv4 --quiet"
export OMP_NUM_THREADS=1
declare -A FLAGS=(
  [simclr]="--epochs 4 --warmup-epochs 1"
  [byol]="--epochs 4 --warmup-epochs 1"
  [simsiam]="--epochs 4"
  [dino]="--epochs 2 --warmup-epochs 1 --local-crops 2 --out-dim 4096"
)
for m in simclr byol simsiam dino; do
  run=runs/$m-all-seed0
  if [ -f $run/checkpoint.pt ]; then resume="--resume"; else resume=""; fi
  start=$(date +%s)
  $SSLX train --shards .cache/shards-all --method $m $NET $FAST --batch-size 256 ${FLAGS[$m]} \
      --seed 0 --workers 1 --quiet --out $run $resume
  echo "$m train rc=$? $(( $(date +%s) - start )) s" >> pilot-times.txt
  start=$(date +%s)
  $SSLX probe --checkpoint $run $PROBE --out probes/$m-all-seed0
  echo "$m probe rc=$? $(( $(date +%s) - start )) s" >> pilot-times.txt
done
