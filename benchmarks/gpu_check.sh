#!/usr/bin/env bash
# A GPU check of lasem_jax that fits 8 minutes, for a machine with one GPU, jax (CUDA build),
# flax, optax, chex and absl-py installed, no network, and this repository's working tree plus
# .whl/ (made by benchmarks/prepare_gpu_wheels.sh on a machine with network). From the
# repository root:
#
#   OUT=/path/to/results bash benchmarks/gpu_check.sh
#
# Steps, each a launcher subprocess under its own `timeout`, each writing JSON into $OUT:
#   setup          install the missing wheels of .whl/ offline into $GPU_CHECK_DEPS (pip
#                  --no-index --no-deps --target; never touches jax), print `nvidia-smi -L` and
#                  jax's devices                                                   -> env.json
#   (a) benchmark  `python -m launch.benchmark --learners=L` for L in hps, tf, dfcnn
#                                                                 -> benchmark_<L>.json
#   (b) first      the README's first command, `python -m launch.train --workdir=W` (default
#                  digits scenario): wall time and its results.json    -> first_command.json,
#                                                                first_command_results.json
#   (c) sweep      27 runs (9 paper configurations x 3 seeds, `configs/default.py:tiny`, 2 tasks:
#                  the README's runs-per-hour CPU table) batched and with --nobatch_runs
#                                               -> sweep_batched.json, sweep_sequential.json
#   (d) numerics   `configs/default.py:tiny`, seed 0, on the GPU and with JAX_PLATFORMS=cpu
#                  (plus --config.train.matmul_precision=highest where the config has it)
#                                      -> numerics_gpu.json, numerics_cpu.json, numerics.json
#   summary        every record combined                               -> summary.json
# A step that fails or times out records its rc and the last lines of its stderr, and the
# check goes on. Each step's full stdout and stderr are in $OUT/logs/. Every launcher starts
# with an empty compilation cache of its own, so each time includes its first compilation.
#
# Time: the steps' budgets (seconds, below) plus setup sum to GPU_CHECK_TOTAL_S (450 = 7.5 min).
# A step may also use what earlier steps left unused, as long as the later steps' budgets still
# fit before the deadline; a step left with under 5 s is skipped (recorded as skipped). A step
# past its limit gets SIGTERM (the launchers then finish the epoch), SIGKILL 5 s later.
#
# Environment:
#   OUT               where the JSON goes (default /tmp/gpu_check)
#   GPU_CHECK_SMOKE=1 shrink every step (tiny sizes, 1 epoch) to test the script on a CPU
#   GPU_CHECK_TOTAL_S overall deadline in seconds (default 450; smoke 1500)
#   BUDGET_BENCH, BUDGET_FIRST, BUDGET_SWEEP, BUDGET_NUMERICS   per-step budgets in seconds
#   GPU_CHECK_WORK    scratch workdirs (default /tmp/gpu_check_work; emptied at the start)
#   GPU_CHECK_DEPS    where the wheels are installed (default /tmp/gpu_check_deps; emptied)
#   PYTHON            the interpreter with jax (default: python3, else python)
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD

OUT=${OUT:-/tmp/gpu_check}
SMOKE=${GPU_CHECK_SMOKE:-0}
WORK=${GPU_CHECK_WORK:-/tmp/gpu_check_work}
DEPS=${GPU_CHECK_DEPS:-/tmp/gpu_check_deps}
PY=${PYTHON:-$(command -v python3 || command -v python)}
HELPER=(env -u PYTHONPATH "$PY" "$ROOT/benchmarks/gpu_check_compare.py")
START=$(date +%s)

if [ "$SMOKE" = 1 ]; then
  TOTAL_S=${GPU_CHECK_TOTAL_S:-1500}
  BUDGET_BENCH=${BUDGET_BENCH:-150} BUDGET_FIRST=${BUDGET_FIRST:-150}
  BUDGET_SWEEP=${BUDGET_SWEEP:-150} BUDGET_NUMERICS=${BUDGET_NUMERICS:-150}
  BENCH_ARGS=(--steps=2 --repeats=1 --width=0.25)
  SHRINK=(--config=configs/default.py:tiny --config.data.num_tasks=2
    --config.train.epochs_per_task=1)
  FIRST_ARGS=("${SHRINK[@]}")
  SWEEP_ARGS=("${SHRINK[@]}" --configs=all,none --seeds=0,1)
  SWEEP_RUNS=4
  NUMERICS_ARGS=("${SHRINK[@]}" --config.seed=0)
else
  TOTAL_S=${GPU_CHECK_TOTAL_S:-450}
  # Per step, seconds: 3 x 50 + 75 + 2 x 50 + 2 x 40 = 405, leaving 45 s for the setup (about
  # 15-20 s: wheels, jax's devices, --print_config) and the kill grace of a timed-out step.
  BUDGET_BENCH=${BUDGET_BENCH:-50} BUDGET_FIRST=${BUDGET_FIRST:-75}
  BUDGET_SWEEP=${BUDGET_SWEEP:-50} BUDGET_NUMERICS=${BUDGET_NUMERICS:-40}
  BENCH_ARGS=() # launch.benchmark's defaults: cifar100_4, width 1, batch 10, 17 steps, 5 repeats
  FIRST_ARGS=() # the README's first command, as it is
  SWEEP_ARGS=(--config=configs/default.py:tiny --config.data.num_tasks=2 --configs=paper
    --seeds=0,1,2)
  SWEEP_RUNS=27 # 9 paper configurations of a 4-layer network x 3 seeds
  NUMERICS_ARGS=(--config=configs/default.py:tiny --config.seed=0)
fi
DEADLINE=$((START + TOTAL_S))
# The timed steps in order with their budgets: a step's limit is what is left before the
# deadline minus the budgets of the steps after it.
STEP_NAMES=(benchmark_hps benchmark_tf benchmark_dfcnn first_command sweep_batched
  sweep_sequential numerics_gpu numerics_cpu)
STEP_BUDGETS=("$BUDGET_BENCH" "$BUDGET_BENCH" "$BUDGET_BENCH" "$BUDGET_FIRST" "$BUDGET_SWEEP"
  "$BUDGET_SWEEP" "$BUDGET_NUMERICS" "$BUDGET_NUMERICS")

# Only files this script writes are removed: its records, its logs, its scratch directories.
mkdir -p "$OUT"
rm -f "$OUT"/*.json
rm -rf "$OUT/logs" "$WORK" "$DEPS"
mkdir -p "$OUT/logs" "$WORK"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# step_limit NAME: seconds the step may run (see STEP_BUDGETS above).
step_limit() {
  local later=0 seen=0 i
  for i in "${!STEP_NAMES[@]}"; do
    [ "$seen" = 1 ] && later=$((later + STEP_BUDGETS[i]))
    [ "${STEP_NAMES[i]}" = "$1" ] && seen=1
  done
  echo $((DEADLINE - $(date +%s) - later))
}

# run_step NAME [--runs=N] [--embed=KEY=FILE]... [--set=KEY=VALUE]... -- COMMAND...
# Runs COMMAND under `timeout` with its own compilation cache and writes $OUT/NAME.json.
# The embedded files are read after the command ends, so they may be its outputs.
run_step() {
  local name=$1 extra=() limit t0 rc
  shift
  while [ "$1" != "--" ]; do extra+=("$1"); shift; done
  shift
  limit=$(step_limit "$name")
  if [ "$limit" -lt 5 ]; then
    echo "== $name: skipped, ${limit} s left" | tee "$OUT/logs/$name.stderr"
    "${HELPER[@]}" step --name="$name" --log="$OUT/logs/$name.stderr" \
      --set=reason="no time left before the deadline" "${extra[@]}" --out="$OUT/$name.json"
    return
  fi
  echo "== $name (limit ${limit} s): $*"
  t0=$(now)
  JAX_COMPILATION_CACHE_DIR="$WORK/cache_$name" timeout -k 5 "$limit" "$@" \
    >"$OUT/logs/$name.stdout" 2>"$OUT/logs/$name.stderr"
  rc=$?
  "${HELPER[@]}" step --name="$name" --rc="$rc" --seconds="$(elapsed "$t0")" \
    --timeout="$limit" --log="$OUT/logs/$name.stderr" --set=command="$*" "${extra[@]}" \
    --out="$OUT/$name.json"
}

# ---- setup: offline install of the missing wheels, then the devices -------------------------
echo "== setup: $PY ($("$PY" --version 2>&1)), OUT=$OUT, smoke=$SMOKE, deadline ${TOTAL_S} s"
INSTALL_RC=0
INSTALLED=""
if [ -d .whl ]; then
  INSTALLED=$("${HELPER[@]}" missing --wheels=.whl | xargs) # names on one line
fi
if [ -n "$INSTALLED" ]; then
  echo "installing from .whl/ into $DEPS: $INSTALLED"
  # Only .whl/: no index, no pip.conf (its find-links or constraints), no dependencies.
  # shellcheck disable=SC2086 # INSTALLED is a list of names
  env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT \
    PIP_CONFIG_FILE=/dev/null timeout 120 "$PY" -m pip install --no-index --no-deps \
    --disable-pip-version-check --find-links .whl --target "$DEPS" $INSTALLED \
    >"$OUT/logs/install.log" 2>&1
  INSTALL_RC=$?
  if [ "$INSTALL_RC" != 0 ]; then # e.g. no pip: unpack the wheels (zip files) instead
    echo "pip install failed (rc $INSTALL_RC, see logs/install.log); unpacking the wheels"
    # shellcheck disable=SC2086
    "${HELPER[@]}" unpack --wheels=.whl --target="$DEPS" $INSTALLED >>"$OUT/logs/install.log" 2>&1
    INSTALL_RC=$?
  fi
else
  echo "nothing to install (.whl/ missing or every package present)"
fi
export PYTHONPATH="$ROOT:$DEPS${PYTHONPATH:+:$PYTHONPATH}"

echo "== nvidia-smi -L"
NVIDIA_SMI=$(timeout 30 nvidia-smi -L 2>&1) || NVIDIA_SMI="nvidia-smi failed or missing: $NVIDIA_SMI"
echo "$NVIDIA_SMI"
echo "== jax devices"
t0=$(now)
timeout 60 "$PY" "$ROOT/benchmarks/gpu_check_compare.py" probe >"$WORK/probe.json" \
  2>"$OUT/logs/probe.stderr"
PROBE_RC=$?
cat "$WORK/probe.json"
# The matmul precision flag only where the config has the field (`--print_config`).
PRECISION=()
if timeout 60 "$PY" -m launch.train --config=configs/default.py --print_config 2>/dev/null |
  grep -q "matmul_precision:"; then
  PRECISION=(--config.train.matmul_precision=highest)
fi
"${HELPER[@]}" step --name=env --rc="$PROBE_RC" --seconds="$(elapsed "$t0")" \
  --log="$OUT/logs/probe.stderr" --embed=probe="$WORK/probe.json" \
  --set=nvidia_smi="$NVIDIA_SMI" --set=wheels_installed="$INSTALLED" \
  --set=install_rc="$INSTALL_RC" --set=matmul_precision_flag="${PRECISION[*]}" \
  --set=smoke="$SMOKE" --set=total_budget_s="$TOTAL_S" --out="$OUT/env.json"

# ---- (a) the benchmark, one learner per process ---------------------------------------------
for learner in hps tf dfcnn; do
  run_step "benchmark_$learner" --embed=result="$WORK/bench_$learner.json" -- \
    "$PY" -m launch.benchmark --learners="$learner" --json="$WORK/bench_$learner.json" \
    "${BENCH_ARGS[@]}"
done

# ---- (b) the README's first command ---------------------------------------------------------
run_step first_command --embed=result="$WORK/first/results.json" -- \
  "$PY" -m launch.train --workdir="$WORK/first" "${FIRST_ARGS[@]}"
cp "$WORK/first/results.json" "$OUT/first_command_results.json" 2>/dev/null

# ---- (c) the sweep, batched and one run after another ---------------------------------------
for variant in batched sequential; do
  batch_flag=()
  [ "$variant" = sequential ] && batch_flag=(--nobatch_runs)
  run_step "sweep_$variant" --runs="$SWEEP_RUNS" --count_results="$WORK/sweep_$variant" -- \
    "$PY" -m launch.sweep --workdir="$WORK/sweep_$variant" "${SWEEP_ARGS[@]}" "${batch_flag[@]}"
done

# ---- (d) numerics: the same run on the GPU and on this machine's CPU -------------------------
run_step numerics_gpu --embed=result="$WORK/num_gpu/results.json" -- \
  "$PY" -m launch.train --workdir="$WORK/num_gpu" "${NUMERICS_ARGS[@]}" "${PRECISION[@]}"
run_step numerics_cpu --embed=result="$WORK/num_cpu/results.json" -- \
  env JAX_PLATFORMS=cpu "$PY" -m launch.train --workdir="$WORK/num_cpu" \
  "${NUMERICS_ARGS[@]}" "${PRECISION[@]}"
"${HELPER[@]}" compare --gpu="$WORK/num_gpu/results.json" --cpu="$WORK/num_cpu/results.json" \
  --matmul_precision="${PRECISION[*]#*=}" --out="$OUT/numerics.json"

# ---- summary ---------------------------------------------------------------------------------
echo "== summary ($(elapsed "$START") s in all)"
"${HELPER[@]}" summary --dir="$OUT"
echo "wrote $OUT/summary.json"
