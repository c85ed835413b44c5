"""Office-Home: the first tasks do not depend on `num_tasks` (generated folder of tiny JPEGs)."""

import numpy as np

from lasem_jax.data import make_tasks
from tests.office_home_test import _config, _write_dataset


def test_first_tasks_do_not_depend_on_num_tasks(tmp_path):
    """A 2-task scenario is exactly the first 2 tasks of the 5-task one with the same seed."""
    _write_dataset(tmp_path / "data")
    cache = str(tmp_path / "cache")
    short = make_tasks(_config(tmp_path / "data", num_tasks=2, cache_dir=cache), seed=3)
    long = make_tasks(_config(tmp_path / "data", num_tasks=5, cache_dir=cache), seed=3)
    assert len(short) == 2 and len(long) == 5
    for a, b in zip(short, long[:2], strict=True):
        assert a.name == b.name
        for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
