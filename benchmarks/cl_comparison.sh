#!/usr/bin/env bash
# The standard continual-learning methods, LASEM (HPS, DF-CNN), static `all` and single_task on
# the offline Fashion-MNIST `:small` scenario, 3 seeds each, then one report.
#
#   bash benchmarks/cl_comparison.sh /tmp/cl_comparison   # ~1 h on 2 CPU cores
#
# Each command is one process training seeds 0, 1, 2 (batched where the method allows);
# the compilation cache is off so that every method's train_seconds includes its compiles.
set -euo pipefail
out=${1:?usage: bash benchmarks/cl_comparison.sh OUT_DIR}
run() {  # run NAME CONFIG [FLAGS...]
  local name=$1 cfg=$2
  shift 2
  echo "$(date -u +%T) $name"
  python -m launch.train --config="configs/$cfg:small" --seeds=0,1,2 --compilation_cache= \
    --workdir="$out/runs/$name" "$@"
}
for m in ewc si lwf er agem derpp; do
  run "$m" "fashion_mnist_$m.py"
done
run finetune fashion_mnist_ewc.py --config.method=finetune
run lasem_hps fashion_mnist_lasem_hps.py --config.learner=hps
run lasem_dfcnn fashion_mnist_lasem_hps.py --config.learner=dfcnn
run static_all fashion_mnist_static.py --config.learner=hps --config.static_config=all
run single_task fashion_mnist_single_task.py
python -m launch.report --workdirs="$out/runs" --out="$out/report"
echo "$(date -u +%T) done"
