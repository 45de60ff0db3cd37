#!/usr/bin/env bash
# The project's GPU check: one run of at most 9 minutes (GPUCHECK_BUDGET, default 500 s,
# which leaves the machine's start and a margin inside the limit), each step under its own
# cap, every failed step's last 30 lines kept. From the repository root:
#
#   here, once:      bash benchmarks/gpu_prepare.sh     # the wheels the GPU machine lacks
#   there:           bash benchmarks/gpu_check.sh        # carry .whl, timeout 540 s
#   here, CPU mode:  GPUCHECK_CPU=1 bash benchmarks/gpu_check.sh  # the slow test runs this
#
# Steps, logs and the summary go to $OUT (default /tmp/gpu-check):
#   setup   install .whl/*.whl into a private folder, make `sslx` importable, record the
#           machine                                          -> env.txt
#   pytest  pytest -m gpu (cap 150 s)                        -> pytest.log
#   bench   benchmarks/gpu.py: every method for 200 steps (img/s, data wait), the
#           clustering step at the paper's size, the probe, a compiled run; it skips what
#           would run past the time left                     -> bench.log, gpu-report.md
#   summary one table of steps, and the tail of every failure -> summary.txt
set -u
START=$SECONDS
BUDGET=${GPUCHECK_BUDGET:-500}
PY=${PY:-python3}
OUT=${OUT:-/tmp/gpu-check}
WORK=${GPUCHECK_WORK:-/tmp/gpu-check-work}
REPO=$PWD
mkdir -p "$OUT"
rm -rf "$WORK" && mkdir -p "$WORK"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
if [ "${GPUCHECK_CPU:-0}" = 1 ]; then
  BENCH=(--device cpu --quick)
  PYTEST_CAP=60
else
  BENCH=(--device cuda)
  PYTEST_CAP=150
fi
TABLE=$WORK/table
: >"$TABLE"
left() { echo $((START + BUDGET - SECONDS)); }

# step NAME CAP LOG CMD...: CMD for min(CAP, time left) seconds; a row in the table, and
# on failure the log's last 30 lines in the summary.
step() {
  local name=$1 cap=$2 log=$3 limit rc t0
  shift 3
  limit=$(left)
  ((cap < limit)) && limit=$cap
  if ((limit < 20)); then
    echo "| $name | skipped: $(left) s left |" >>"$TABLE"
    return
  fi
  t0=$SECONDS
  timeout -k 10 "$limit" "$@" >"$log" 2>&1
  rc=$?
  local what=ok
  ((rc == 124 || rc == 137)) && what="stopped at its ${limit} s cap"
  ((rc != 0 && rc != 124 && rc != 137)) && what="failed (exit $rc)"
  echo "| $name | $what after $((SECONDS - t0)) s |" >>"$TABLE"
  if [ "$what" != ok ]; then
    { echo "### $name: last 30 lines of $(basename "$log")"; tail -n 30 "$log"; echo; } >>"$WORK/failures"
  fi
}

# setup: the carried wheels (webdataset, braceexpand) into a private folder, and the
# repository root importable as `sslx` (it is the package), without an install.
{
  date -u
  uname -a
  echo "cores: $(nproc)"
  free -g
  df -h /dev/shm /tmp 2>&1
  nvidia-smi 2>&1 | head -15
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
} >"$OUT/env.txt" 2>&1
if ls "$REPO"/.whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --target "$WORK/site" "$REPO"/.whl/*.whl \
    >>"$OUT/env.txt" 2>&1 || echo "wheel install failed" >>"$OUT/env.txt"
  export PYTHONPATH=$WORK/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! "$PY" -c "import sslx" 2>/dev/null; then
  mkdir -p "$WORK/path" && ln -sfn "$REPO" "$WORK/path/sslx"
  export PYTHONPATH=$WORK/path${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" -c "import sslx.cli, webdataset; print('imports: ok')" >>"$OUT/env.txt" 2>&1 ||
  echo "| setup | sslx or webdataset does not import: run benchmarks/gpu_prepare.sh here |" >>"$TABLE"

step "pytest -m gpu" "$PYTEST_CAP" "$OUT/pytest.log" \
  "$PY" -m pytest -m gpu -v -rfEs -p no:cacheprovider -p no:xdist tests
# gpu.py stops starting steps 30 s before the check's end; its own caps bound each step.
step "benchmarks/gpu.py" "$(left)" "$OUT/bench.log" \
  "$PY" benchmarks/gpu.py "${BENCH[@]}" --budget "$(($(left) - 30))" \
  --out "$OUT/gpu-report.md" --work "$WORK/bench"

{
  echo "## sslx GPU check: $((SECONDS - START)) s of a $BUDGET s budget"
  echo
  echo "| step | result |"
  echo "|---|---|"
  cat "$TABLE"
  echo
  grep -E "[0-9]+ (passed|failed|skipped|error)" "$OUT/pytest.log" 2>/dev/null | tail -1
  [ -f "$OUT/gpu-report.md" ] && grep -E "^\| " "$OUT/gpu-report.md"
  [ -f "$OUT/gpu-report.md" ] && sed -n '/^## Skipped/,/^## Failures/p' "$OUT/gpu-report.md"
  [ -f "$WORK/failures" ] && { echo; echo "## Failures"; cat "$WORK/failures"; }
} | tee "$OUT/summary.txt"
