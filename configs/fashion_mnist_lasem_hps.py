"""Fashion-MNIST, 10 three-way tasks (noise + rotation/flip/inversion): LASEM with HPS, CPU-sized.

python -m launch.train --config=configs/fashion_mnist_lasem_hps.py --workdir=/tmp/fm_lasem

Real data offline: `apt-get install dataset-fashion-mnist` or --config.data.data_dir=<idx dir>.
The static and single-task files reuse `fashion_mnist_config`; `:tiny` is a 2-epoch smoke test.
"""

from configs import default, paper

EPOCHS_PER_TASK = 4  # 60 minibatches per epoch; a full LASEM run takes ~10 min on 2 CPU cores


def fashion_mnist_config(method: str, arg: str | None = None):
    """Returns the Fashion-MNIST config of `method`; `arg="tiny"` shrinks it for smoke tests."""
    c = default.get_config()
    c.method = method
    c.data.update(dict(name="fashion_mnist", num_tasks=10, classes_per_task=3))
    c.data.update(dict(train_per_class=200, val_per_class=50, test_per_class=200, data_dir=""))
    c.model.arch, c.model.width = "cifar100_4", 0.5  # 28x28 -> 14 -> 7 after the two pools
    c.optim.lr, c.optim.lr_decay = 1e-3, 0.0
    c.train.epochs_per_task = EPOCHS_PER_TASK
    if arg == "tiny":
        c.train.epochs_per_task, c.model.width = paper.TINY_EPOCHS_PER_TASK, paper.TINY_WIDTH
    return c


def get_config(arg: str | None = None):
    """Returns the LASEM (HPS) config."""
    return fashion_mnist_config("lasem", arg)
