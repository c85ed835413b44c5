"""What the launchers share: config flag, errors, signals, workdirs, progress, compilation cache."""

from __future__ import annotations

import logging as pylogging
import os
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import ml_collections
from absl import app, flags, logging
from ml_collections import config_flags

from lasem_jax import interrupt
from lasem_jax.config import sanity
from lasem_jax.native import conv as native_conv
from lasem_jax.storage import workdir_lock

DEFAULT_CONFIG = os.path.join(os.path.dirname(os.path.dirname(__file__)), "configs", "default.py")
ERROR_EXIT = 2

_DEBUG = flags.DEFINE_bool("debug", False, "On an error, show its traceback too.")
_PRINT_CONFIG = flags.DEFINE_bool(
    "print_config", False, "Print the resolved config (every --config.<field>) and exit."
)
_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache",
    None,
    "Directory of JAX's persistent compilation cache: later runs load the compiled training "
    "programs from it instead of compiling them again. Unset: $JAX_COMPILATION_CACHE_DIR if set, "
    "else $LASEM_JAX_CACHE_DIR, else $XDG_CACHE_HOME/lasem_jax/jax, else "
    "~/.cache/lasem_jax/jax. --compilation_cache= (empty) turns the cache off.",
)
# Programs compiling faster than this are not cached: 0 caches every program (JAX's default, 1 s,
# skips the epoch programs of small networks, and even small programs load faster than they
# compile); a set $JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS wins.
CACHE_MIN_COMPILE_SECS = 0.0
_define_errors: list[Exception] = []


def define_config() -> flags.FlagHolder | None:
    """Defines `--config` (a config file; `--config.<field>=<value>` overrides a field).

    ml_collections applies the overrides while defining the flag, so a misspelled field fails
    here; the error is kept and reported by `run` as one line.
    """
    try:
        return config_flags.DEFINE_config_file(
            "config",
            DEFAULT_CONFIG,
            "Experiment config file (configs/*.py, optionally `file.py:arg`); override any field "
            "with --config.<field>=<value>; --print_config lists the fields and their values.",
            lock_config=True,
        )
    except (KeyError, AttributeError, ValueError, TypeError) as e:
        _define_errors.append(e)
        return None


def message(error: BaseException) -> str:
    """An exception as one line; an unknown config field's "Did you mean ..." comes first."""
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    text = text.replace("\\n", "\n").replace("\\'", "'")
    lines = [line.strip().strip("'\"") for line in text.splitlines() if line.strip()]
    suggestion = [line for line in lines if line.startswith("Did you mean")]
    if suggestion:
        unknown = [line for line in lines if not line.startswith("Did you mean")]
        return f"{suggestion[0]} (unknown config field {', '.join(unknown)})"
    return " ".join(lines)


def fail(text: str) -> None:
    """Prints `Error: text` to stderr and exits with status 2."""
    print(f"Error: {text}", file=sys.stderr, flush=True)
    sys.exit(ERROR_EXIT)


def config_value(holder: flags.FlagHolder) -> ml_collections.ConfigDict:
    """The resolved config, or a one-line error naming the missing/broken config file."""
    path = config_flags.get_config_filename(flags.FLAGS["config"]).split(":")[0]
    if not os.path.isfile(path):
        fail(f"config file {path} not found; pass an existing one, e.g. --config={DEFAULT_CONFIG}.")
    try:
        return holder.value
    except OSError as e:
        raise ValueError(f"config file {path} could not be loaded: {message(e)}") from e


def overrides() -> dict[str, Any]:
    """The `--config.<field>` values given on the command line."""
    return config_flags.get_override_values(flags.FLAGS["config"])


def maybe_print_config(config: ml_collections.ConfigDict) -> None:
    """With --print_config, prints the resolved config and exits 0."""
    if _PRINT_CONFIG.value:
        print(config)
        sys.exit(0)


def start(
    argv: list[str], holder: flags.FlagHolder, workdir: str | None, what: str
) -> ml_collections.ConfigDict:
    """A launcher's first steps, each failing with a one-line error.

    No stray arguments, the config (--print_config prints it and exits), and a --workdir;
    `what` says in the error what the workdir is for.
    """
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}; flags look like --workdir=DIR.")
    config = config_value(holder)
    maybe_print_config(config)
    if not workdir:
        fail(f"--workdir is required: {what}.")
    return config


def default_cache_dir(environ: Mapping[str, str] | None = None) -> str:
    """The compilation cache directory without --compilation_cache and $JAX_COMPILATION_CACHE_DIR.

    `$LASEM_JAX_CACHE_DIR` if set, else `$XDG_CACHE_HOME/lasem_jax/jax`, else
    `~/.cache/lasem_jax/jax`.

    Args:
      environ: the environment (default `os.environ`).
    """
    environ = os.environ if environ is None else environ
    if environ.get("LASEM_JAX_CACHE_DIR"):
        return environ["LASEM_JAX_CACHE_DIR"]
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lasem_jax", "jax")


def compilation_cache_dir(flag: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The compilation cache directory to use, or None for no cache.

    Args:
      flag: the value of --compilation_cache: None if not given, "" to turn the cache off.
      environ: the environment (default `os.environ`); a set `$JAX_COMPILATION_CACHE_DIR` wins
        over `default_cache_dir`.
    """
    if flag is not None:
        return flag or None
    environ = os.environ if environ is None else environ
    return environ.get("JAX_COMPILATION_CACHE_DIR") or default_cache_dir(environ)


def enable_compilation_cache(path: str | None) -> str | None:
    """Turns on JAX's persistent compilation cache in `path` (None: turns it off).

    Creates the directory; where that fails (e.g. a file is in the way) logs one warning and
    runs without a cache. Logs one line naming the directory used. Call before anything is
    compiled: JAX opens the cache at the first compilation.

    Args:
      path: the cache directory (`~` expanded), or None.

    Returns:
      The absolute cache directory, or None if the process runs without a cache.
    """
    if path is None:
        jax.config.update("jax_enable_compilation_cache", False)
        logging.info("Compilation cache: off (--compilation_cache=)")
        return None
    path = os.path.abspath(os.path.expanduser(path))
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        jax.config.update("jax_enable_compilation_cache", False)
        in_the_way = os.path.exists(path) and not os.path.isdir(path)
        logging.warning(
            "Compilation cache %s is not a writable directory (%s); running without a cache "
            "(pass another --compilation_cache=DIR, or --compilation_cache= to turn it off).",
            path,
            "a file is in the way" if in_the_way else e.strerror or e,
        )
        return None
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", path)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", CACHE_MIN_COMPILE_SECS)
    logging.info("Compilation cache: %s (--compilation_cache=DIR to move it, empty: off)", path)
    return path


def print_written(written: Sequence[str], show: str) -> None:
    """Prints the written file named `show` (e.g. `table.md`), then every path written."""
    for path in written:
        if os.path.basename(path) == show:
            with open(path, encoding="utf-8") as f:
                print(f.read())
    print("\n".join(written))


def log_config_summary(config: ml_collections.ConfigDict) -> None:
    """Logs the config file, the run's main settings and the command-line overrides."""
    path = config_flags.get_config_filename(flags.FLAGS["config"])
    learner = "" if config.method not in sanity.LEARNER_METHODS else f", learner {config.learner}"
    logging.info(
        "Config %s: method %s%s, data %s (%s tasks), %s width %s, %d epochs/task, batch %d, "
        "lr %g, seed %d, convolutions %s (full config: --print_config; saved in results.json)",
        path,
        config.method,
        learner,
        config.data.name,
        config.data.get("num_tasks", "?"),
        config.model.arch,
        config.model.width,
        config.train.epochs_per_task,
        config.train.batch_size,
        config.optim.lr,
        config.seed,
        native_conv.path(),
    )
    changed = overrides()
    if changed:
        logging.info("Overrides: %s", ", ".join(f"{k}={v}" for k, v in sorted(changed.items())))


def warn_ignored_fields(config: ml_collections.ConfigDict) -> None:
    """Logs one warning line naming set fields the chosen method does not read."""
    ignored = sanity.ignored_fields(config)
    if ignored:
        logging.warning(
            "method %s ignores %s (set but not read by this method).",
            config.method,
            ", ".join(ignored),
        )


def warn_if_chance(results: dict, tasks: Sequence[Any]) -> None:
    """Logs a warning when every task stayed at chance level (accuracy means nothing then)."""
    warning = sanity.chance_warning(results, [t.num_classes for t in tasks])
    if warning:
        logging.warning("%s", warning)


def prepare_workdir(path: str) -> str:
    """Creates `path` if needed and checks it is a writable directory (one-line errors)."""
    if os.path.exists(path) and not os.path.isdir(path):
        fail(f"--workdir={path} is a file; pass a directory (it is created if missing).")
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        fail(f"--workdir={path} is not a writable directory ({e.strerror}); pass another one.")
    return path


def parse_seeds(values: list[str]) -> list[int]:
    """`--seeds` as integers (one-line error otherwise)."""
    try:
        return [int(v) for v in values]
    except ValueError:
        fail(f"--seeds={','.join(values)} must be comma-separated integers, e.g. --seeds=0,1,2.")
    raise AssertionError  # fail() exits


def hide_orbax_info(record: pylogging.LogRecord) -> bool:
    """Keeps the per-epoch lines readable: orbax logs ~10 INFO lines per checkpoint."""
    return record.levelno >= pylogging.WARNING or "orbax" not in record.pathname


def run(main: Callable[[list[str]], None]) -> None:
    """`app.run(main)` with one-line errors (exit 2), graceful signals (exit 130 / 143).

    Before `main`, turns on the persistent compilation cache (--compilation_cache).
    """
    if _define_errors:
        fail(message(_define_errors[0]) + " (--print_config lists the fields)")

    started = []

    def wrapped(argv: list[str]) -> None:
        started.append(True)
        logging.get_absl_handler().addFilter(hide_orbax_info)
        enable_compilation_cache(compilation_cache_dir(_COMPILATION_CACHE.value))
        try:
            with interrupt.graceful_stop():
                main(argv)
        except interrupt.Stopped as stop:
            name = signal.Signals(stop.signum).name
            print(
                f"Stopped at task {stop.task + 1}, epoch {stop.epoch} ({name}); run the same "
                "command to resume.",
                file=sys.stderr,
            )
            sys.exit(128 + stop.signum)
        except KeyboardInterrupt:
            signum = interrupt.requested() or signal.SIGINT
            print(
                "\nStopped at once; the last checkpoint is kept: run the same command to resume.",
                file=sys.stderr,
            )
            sys.exit(128 + signum)
        except (
            ValueError,
            TypeError,
            KeyError,
            OSError,
            FloatingPointError,
            workdir_lock.WorkdirBusyError,
        ) as e:
            if _DEBUG.value:
                traceback.print_exc()
            fail(message(e))

    try:
        app.run(wrapped)
    except (KeyError, AttributeError) as e:
        if started:
            raise
        # ml_collections applies `--config.<field>=` overrides while parsing the flags.
        overrides = [a.split("=")[0] for a in sys.argv[1:] if a.startswith("--config.")]
        fail(
            f"{' / '.join(overrides) or 'an override'}: the config has no such field "
            f"({message(e)}); --print_config lists its fields (data fields such as data_dir "
            "exist in the configs of the datasets that read them, e.g. "
            "configs/fashion_mnist_lasem_hps.py)."
        )


class ProgressLine:
    """Formats per-epoch progress: `task t/T epoch e/E`, elapsed time and an ETA.

    Attributes:
      num_tasks: tasks per run `T`.
      epochs: epochs per task `E`.
      total: epochs this process will train in all (every run).
    """

    def __init__(self, num_tasks: int, epochs: int, runs: int = 1) -> None:
        self.num_tasks, self.epochs = num_tasks, epochs
        self.total = num_tasks * epochs * runs
        self.done, self.start = 0, time.time()

    def __call__(self, record: dict) -> str:
        """The line of one epoch record (counts it as done)."""
        self.done += 1
        elapsed = time.time() - self.start
        left = max(self.total - self.done, 0) * elapsed / self.done
        prior = ""
        if "top_prior" in record:
            prior = f" prior {record['top_prior']:.3f}"
            prior += (
                f" posterior {record['top_posterior']:.3f}" if "top_posterior" in record else ""
            )
            prior += f" ({record['phase']})" if record.get("phase", "em") != "em" else ""
        return (
            f"task {record['task'] + 1}/{self.num_tasks} epoch {record['epoch']:>3}/{self.epochs}"
            f" | loss {record['loss']:.4f} | val {record['val'][-1]:.3f} "
            f"test {_accuracy(record['test'][-1])} | config {record.get('config', '-')}{prior}"
            f" | {_duration(elapsed)} elapsed, ETA {_duration(left)}"
        )


def _accuracy(value: float | None) -> str:
    """An accuracy to 3 decimals; `-` where the epoch did not evaluate it."""
    return "-" if value is None else f"{value:.3f}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
