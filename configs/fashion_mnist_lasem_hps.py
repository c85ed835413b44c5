"""Fashion-MNIST, 10 three-way tasks (noise + rotation/flip/inversion): LASEM with HPS, CPU-sized.

python -m launch.train --config=configs/fashion_mnist_lasem_hps.py --workdir=/tmp/fm_lasem

Real data offline: `apt-get install dataset-fashion-mnist` or --config.data.data_dir=<idx dir>.
Every fashion_mnist_<method> file reuses `fashion_mnist_config`; `:tiny` is a 3-epoch smoke
test (`lasem_jax.config.defaults.apply_tiny`) and `:small` the scenario of the README's comparisons
(5 tasks, 100 training images per class, width 0.25), sized so that 3 seeds of every method fit
in about an hour on 2 CPU cores.
"""

from configs import default
from lasem_jax.config import defaults

EPOCHS_PER_TASK = 4  # 60 minibatches per epoch; a full LASEM run takes ~10 min on 2 CPU cores


def fashion_mnist_config(method: str, arg: str | None = None):
    """Returns the Fashion-MNIST config of `method`; `arg` = None, "tiny" or "small"."""
    c = default.get_config()
    c.method = method
    c.data.update(dict(name="fashion_mnist", num_tasks=10, classes_per_task=3))
    c.data.update(dict(train_per_class=200, val_per_class=50, test_per_class=200, data_dir=""))
    c.model.arch, c.model.width = "cifar100_4", 0.5  # 28x28 -> 14 -> 7 after the two pools
    c.optim.lr, c.optim.lr_decay = 1e-3, 0.0
    c.train.epochs_per_task = EPOCHS_PER_TASK
    if arg == "tiny":
        defaults.apply_tiny(c)
    elif arg == "small":
        c.data.update(dict(num_tasks=5, train_per_class=100, val_per_class=25, test_per_class=100))
        c.model.width, c.model.he_init = 0.25, True  # He init: learns within 120 steps
    elif arg not in (None, ""):
        raise ValueError(f"Unknown config argument {arg!r}; use nothing, ':tiny' or ':small'.")
    return c


def get_config(arg: str | None = None):
    """Returns the LASEM (HPS) config."""
    return fashion_mnist_config("lasem", arg)
