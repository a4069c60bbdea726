#!/usr/bin/env bash
# `ecsim bench --backend jax` on one GPU: 10^4, 10^5 and 10^6 patients over 14 days, 10^6 over
# 84 days (the main job's 12 weeks), and the NumPy engine at 10^4 on the same machine as the baseline; each run's JSON and a log in $OUT, timings printed as
# they come. Written for the lent NVIDIA machine (Python 3.12 at python3 with JAX+CUDA, NumPy,
# SciPy, SymPy, PyYAML, typer, rich, threadpoolctl; no pydantic or pint, no network): the missing
# pure-Python packages and pydantic-core travel as wheels in .whl/ (benchmarks/README.md, "JAX
# backend"), installed into $SITE. libroadrunner and SciPy are not timed there (--contenders
# ecsim); the SciPy reference still runs, for max_rel_error_vs_reference.
#
#   device tool: command "bash benchmarks/gpu_bench.sh", carry [".whl"], timeout_s 480
#   dry run here: PYTHON=/path/python WHEELS=/path/wheels REQUIRE_GPU=0 JAX_SIZES="20 200" \
#                 NUMPY_SIZES=20 OUT=/tmp/out bash benchmarks/gpu_bench.sh
#
# Ends within DEADLINE_S seconds (default 420): each run gets what is left, so a slow compile
# costs the runs after it, never the whole call. 10^5 and 10^6 share their chunk size (100,000),
# so the persistent compilation cache compiles that kernel once.
set -uo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s)
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/out}
SITE=${SITE:-/tmp/site}
WHEELS=${WHEELS:-.whl}
JAX_SIZES=${JAX_SIZES:-"10000 100000 1000000"}
NUMPY_SIZES=${NUMPY_SIZES:-10000}
LONG_SIZES=${LONG_SIZES:-1000000}   # also over the main job's 12 weeks (LONG_DAYS), JAX only
LONG_DAYS=${LONG_DAYS:-84}
DEADLINE_S=${DEADLINE_S:-420}
REQUIRE_GPU=${REQUIRE_GPU:-1}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/ecsim-jax-cache}
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
exec > >(tee -a "$OUT/gpu_bench.log") 2>&1

say() { echo "[$(( $(date +%s) - T0 )) s] $*"; }

say "installing $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into $SITE"
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl \
    || { say "error: wheel install failed"; exit 1; }
export PYTHONPATH="$SITE:$PWD/src"

"$PY" - <<'EOF' || { say "error: ecsim or jax cannot be imported, or no GPU (REQUIRE_GPU=0 to run anyway)"; exit 1; }
import os, sys, jax, numpy, scipy, sympy
import ecsim.bench  # noqa: F401  (pydantic, pint, the registry)
d = jax.devices()[0]
print(f"python {sys.version.split()[0]}, jax {jax.__version__}, numpy {numpy.__version__}, scipy {scipy.__version__}, "
      f"sympy {sympy.__version__}; devices {jax.devices()}")
sys.exit(0 if d.platform == "gpu" or os.environ.get("REQUIRE_GPU") == "0" else 3)
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"

bench() {   # name, then ecsim bench's options
    local name=$1; shift
    local left=$(( DEADLINE_S - ($(date +%s) - T0) ))
    if [ "$left" -lt 20 ]; then say "$name: skipped, ${left} s left"; return; fi
    say "$name: ecsim bench $* (at most ${left} s)"
    timeout "$left" "$PY" -m ecsim bench "$@" --contenders ecsim --progress --json > "$OUT/$name.json"
    local rc=$?
    [ $rc -eq 0 ] || { say "$name: exit status $rc"; rm -f "$OUT/$name.json"; return; }
    "$PY" - "$OUT/$name.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"  {d['backend']} on {d['device']}: {d['patients']} patients, {d['ecsim_patients_per_s']:.0f}/s, "
      f"compile {d['compile_s']:.1f} s, chunk {d['chunk']}, error {d['max_rel_error_vs_reference']:.2g}, "
      f"peak RSS {d['peak_rss_mb']:.0f} MiB")
EOF
}

sizes=($JAX_SIZES)
bench "jax-${sizes[0]}" --patients "${sizes[0]}" --backend jax
for n in $NUMPY_SIZES; do bench "numpy-$n" --patients "$n" --backend numpy; done
for n in "${sizes[@]:1}"; do bench "jax-$n" --patients "$n" --backend jax; done
for n in $LONG_SIZES; do bench "jax-$n-${LONG_DAYS}d" --patients "$n" --days "$LONG_DAYS" --backend jax; done
say "done; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
