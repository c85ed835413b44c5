#!/usr/bin/env bash
# Downloads, on a machine WITH network, the wheels that benchmarks/gpu_check.sh installs offline
# on the GPU machine, into .whl/ at the repository root (ignored by git; the device call carries
# it with carry=[".whl"]).
#
# The GPU machine already has jax (CUDA build), flax, optax, chex and absl-py, with their own
# dependencies (numpy, scipy, PyYAML, orbax-checkpoint, tensorstore, rich, ...). The code paths
# the check runs (launch.benchmark, launch.train, launch.sweep on the embedded digits scenario)
# import, beyond those (found with `python -X importtime` and by importing each launcher in a
# virtualenv holding only jax flax optax chex absl-py):
#   ml-collections            configs and every launcher, at module top level
#   scikit-learn              sklearn.datasets.load_digits (the digits loader imports it lazily),
#     + joblib, threadpoolctl, narwhals, cloudpickle (imported by sklearn)
#   matplotlib                launch.sweep -> lasem_jax.reports -> lasem_jax.figures imports
#                             matplotlib at module top level (though a sweep draws no figure),
#     + pillow, kiwisolver, fonttools, pyparsing, cycler, python-dateutil, packaging (imported
#       by `import matplotlib.figure`), contourpy, six (declared by matplotlib / dateutil)
#   tensorboardX + protobuf    every run writes TensorBoard event files (train.tensorboard)
# Not shipped, because these paths never import them: tensorflow-datasets (other data sets,
# imported lazily) and tensorflow. jax and friends are never downloaded: `pip download --no-deps`
# of exactly the lists below. A package the GPU machine already has is skipped by gpu_check.sh.
#
# Usage (from anywhere):  bash benchmarks/prepare_gpu_wheels.sh
# Environment:
#   PY_VERSIONS  Python versions of the GPU machine, space separated (default: this machine's
#                python3, e.g. "3.11"); the binary wheels (~27 MiB) are fetched for each, the
#                pure-Python ones (~3 MiB) once; gpu_check.sh's pip picks the matching ones.
#                Two versions fit the carry limit, three do not.
#   PIN_FROM     a python whose installed versions pin the downloads (default: .venv/bin/python
#                if present, so the GPU check runs the versions tested here; else latest).
set -u
cd "$(dirname "$0")/.."

DEST=.whl
PY_VERSIONS=${PY_VERSIONS:-$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')}
PIN_FROM=${PIN_FROM:-.venv/bin/python}
# Compiled (one wheel per Python version) and pure-Python (one wheel for all) packages; fonttools
# is taken as its pure-Python wheel (1.3 MiB instead of 6.8: its compiled speed-ups are optional).
BINARY=(scikit-learn matplotlib pillow kiwisolver contourpy protobuf)
PURE=(ml-collections joblib threadpoolctl narwhals cloudpickle fonttools pyparsing cycler
  python-dateutil six packaging tensorboardX)

# "name==version" where PIN_FROM has the package installed, else just "name".
pinned() {
  local name=$1 version=""
  if [ -x "$PIN_FROM" ]; then
    version=$("$PIN_FROM" -c "import importlib.metadata as m, sys
try:
    print(m.version(sys.argv[1]))
except m.PackageNotFoundError:
    pass" "$name" 2>/dev/null)
  fi
  if [ -n "$version" ]; then echo "$name==$version"; else echo "$name"; fi
}

specs() { for p in "$@"; do pinned "$p"; done; }
mapfile -t BINARY_SPECS < <(specs "${BINARY[@]}")
mapfile -t PURE_SPECS < <(specs "${PURE[@]}")
echo "compiled: ${BINARY_SPECS[*]}"
echo "pure Python: ${PURE_SPECS[*]}"
echo "python versions: $PY_VERSIONS (CPython, manylinux x86_64)"

mkdir -p "$DEST"
status=0
# --no-deps: exactly these packages; --only-binary: wheels for the target interpreter, not this
# machine's (the platforms cover manylinux2014 and newer glibc tags).
download() {
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$DEST" "$@" 2>&1 |
    grep -v "^WARNING: Location" # this machine's pip.conf names a missing local index
  return "${PIPESTATUS[0]}"
}
for v in $PY_VERSIONS; do
  download --python-version "$v" --implementation cp --abi "cp${v/./}" \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 "${BINARY_SPECS[@]}" ||
    { echo "pip download of the compiled wheels failed for Python $v" >&2; status=1; }
done
first=${PY_VERSIONS%% *}
download --python-version "$first" --platform any "${PURE_SPECS[@]}" ||
  { echo "pip download of the pure-Python wheels failed" >&2; status=1; }

echo "wheels in $DEST/:"
ls -l "$DEST"/*.whl 2>/dev/null | awk '{printf "  %8.1f MiB  %s\n", $5 / 1048576, $NF}'
total=$(du -sb "$DEST" | cut -f1)
awk -v t="$total" 'BEGIN { printf "total: %.1f MiB (the device call carries at most 64 MiB)\n", t / 1048576 }'
if [ "$total" -gt $((60 * 1048576)) ]; then
  echo "warning: $DEST is over 60 MiB; remove old wheels (rm -r $DEST) and run again" >&2
  status=1
fi
exit $status
