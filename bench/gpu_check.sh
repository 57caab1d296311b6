#!/usr/bin/env bash
# Everything GPU-related in one go, under 5 minutes on one GPU: the tests marked `gpu`, epoch and flow
# timings (bench/gpu_bench.py), and the tiny workflow with device: cuda. Prints one summary at the end.
# Run from the repository root on a machine with CUDA and the package installed (make setup).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
SNAKEMAKE="$(dirname "$PY")/snakemake"
export PATH="$(cd "$(dirname "$PY")" && pwd):$PATH"
summary=()
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true

t=$(date +%s)
if "$PY" -m pytest -q -m gpu tests/test_gpu.py -p no:cacheprovider; then r=passed; else r=FAILED; fi
summary+=("gpu tests: $r ($(( $(date +%s) - t )) s)")

t=$(date +%s)
bench_out=$("$PY" bench/gpu_bench.py "$@" 2>&1); rc=$?
echo "$bench_out"
summary+=("gpu_bench: rc=$rc ($(( $(date +%s) - t )) s)")

t=$(date +%s)
wd=$(mktemp -d)
cp -r Snakefile workflow profiles environment.yml "$wd"/
sed -e 's/device: cpu/device: cuda/' tests/configs/tiny.yaml > "$wd/config.yaml"
if (cd "$wd" && "$SNAKEMAKE" --cores 4 -q > "$wd/run.log" 2>&1) && [ -f "$wd/results/tables/summary.csv" ] \
    && grep -q '"device": "cuda' "$wd"/results/digits/small_cnn/seed0/dense/metrics.json; then
  r=passed
else
  r="FAILED (see $wd/run.log)"
fi
summary+=("tiny workflow, device: cuda: $r ($(( $(date +%s) - t )) s)")

echo
echo "================ GPU check summary ================"
printf '%s\n' "${summary[@]}"
echo "$bench_out" | grep '^RESULT' || true
