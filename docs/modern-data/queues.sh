#!/bin/bash
# The modern-methods recipe of docs/modern.md (issue 25), as two queues that run side by
# side, one thread each: `modern.sh alexnet` and `modern.sh resnet18`. Same commands as
# the recipe's blocks; a finished network (its probe's results.json) is skipped, a stopped
# run resumes. Runs the code snapshot in code/sslx (PYTHONPATH), not the live checkout.
set -u
cd /work/exp
export PYTHONPATH=/work/exp/code OMP_NUM_THREADS=1
sslx() { /work/main/.venv/bin/sslx "$@"; }
SEEDS=${SEEDS:-"0 1"}; PRESETS="all none"
METHODS="simclr byol simsiam dino"; RESNET_METHODS="simclr dino"
EPOCHS=4; WARMUP=1; DINO_EPOCHS=2; DINO_WARMUP=1; RESNET_EPOCHS=1; RESNET_WARMUP=0.25
BATCH=256; SIZE=32; STRIDE=2
ALEXNET="--size $SIZE --conv1-stride $STRIDE --classifier-width 512"
RESNET="--arch resnet18 --size $SIZE --checkpoint-every 20"  # resumable within its one epoch
FAST="--precision bf16 --channels-last"
DINO_FLAGS="--local-crops 2 --out-dim 4096"
PROBE="--dataset cifar10 --data-dir .cache/data/cifar10/train --cache-features --quiet"
CONVS="--layers conv1,conv2,conv3,conv4"
log() { echo "$(date -u +%FT%TZ) $*" >> logs/times.txt; }
timed() { local what=$1; shift; local t=$(date +%s); "$@"; log "$what rc=$? $(( $(date +%s) - t )) s"; }
one() {  # one network: train (or resume) and probe
  local name=$1; shift
  [ -f probes/modern/$name/results.json ] && return
  local resume=""; [ -f runs/modern/$name/checkpoint.pt ] && resume="--out runs/modern/$name --resume"
  if [ -n "$resume" ]; then timed "$name train(resume)" sslx train $resume --quiet
  else timed "$name train" sslx train "$@" --quiet --out runs/modern/$name; fi
  local layers=$CONVS; case $name in *-resnet18-*) layers="";; esac
  timed "$name probe" sslx probe --checkpoint runs/modern/$name $PROBE $layers --out probes/modern/$name
}
if [ "$1" = alexnet ]; then
  for seed in $SEEDS; do for preset in none all; do for method in $METHODS; do
    case $method in
      dino) SCHEDULE="--epochs $DINO_EPOCHS --warmup-epochs $DINO_WARMUP $DINO_FLAGS" ;;
      simsiam) SCHEDULE="--epochs $EPOCHS" ;;
      *) SCHEDULE="--epochs $EPOCHS --warmup-epochs $WARMUP" ;;
    esac
    one $method-$preset-seed$seed --shards .cache/modern/shards-$preset --method $method \
        $ALEXNET $FAST --batch-size $BATCH $SCHEDULE --seed $seed
  done; done; done
else
  [ -f probes/modern/random-resnet18/results.json ] || timed "random-resnet18 probe" \
      sslx probe --random-init --arch resnet18 --size $SIZE $PROBE --out probes/modern/random-resnet18
  for preset in $PRESETS; do for seed in $SEEDS; do for method in $RESNET_METHODS; do  # both seeds of `all` first
    EXTRA=""; [ $method = dino ] && EXTRA=$DINO_FLAGS
    one $method-resnet18-$preset-seed$seed --shards .cache/modern/shards-$preset --method $method \
        $RESNET $FAST --batch-size $BATCH --epochs $RESNET_EPOCHS --warmup-epochs $RESNET_WARMUP \
        $EXTRA --seed $seed
  done; done; done
fi
log "queue $1 done"
