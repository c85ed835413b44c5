"""lasem_jax: LASEM (Lifelong Architecture Search via EM) in JAX, with HPS, TF and DF-CNN."""

from lasem_jax.config.defaults import default_config
from lasem_jax.core import em
from lasem_jax.core.search_space import (
    config_index,
    config_to_string,
    enumerate_configs,
    named_config,
    validate_partition,
)
from lasem_jax.errors import ImportNotAllowedError, LoadError, MissingFileError
from lasem_jax.networks.architectures import (
    ARCHITECTURES,
    get_architecture,
    register_architecture,
    registered_architectures,
)
from lasem_jax.networks.blocks import BlockNetwork, ConvBlock
from lasem_jax.networks.learners import LEARNERS, Learner, get_learner
from lasem_jax.networks.model import Model, build_model, count_params
from lasem_jax.task import Task, validate_tasks
from lasem_jax.training.trained import TrainedModel, load_trained
from lasem_jax.training.trainer import METHODS, train_lifelong, train_lifelong_seeds

__all__ = [
    "ARCHITECTURES",
    "LEARNERS",
    "METHODS",
    "BlockNetwork",
    "ConvBlock",
    "ImportNotAllowedError",
    "Learner",
    "LoadError",
    "MissingFileError",
    "Model",
    "Task",
    "TrainedModel",
    "build_model",
    "config_index",
    "config_to_string",
    "count_params",
    "default_config",
    "em",
    "enumerate_configs",
    "get_architecture",
    "get_learner",
    "load_trained",
    "named_config",
    "register_architecture",
    "registered_architectures",
    "train_lifelong",
    "train_lifelong_seeds",
    "validate_partition",
    "validate_tasks",
]
