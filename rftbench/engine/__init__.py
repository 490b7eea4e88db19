"""The training engine: hardware detection, the fused adversarial step, the training loop, checkpoints, tuning trials."""

from .checkpoint import CheckpointError, CheckpointStore, load_weights, save_weights, sha256_file
from .guards import choose_channels_last, decide_channels_last
from .hardware import (
    MemoryFormat,
    Precision,
    choose_precision,
    cpu_has_bf16,
    describe_device,
    resolve_device,
)
from .optim import build_optimizer, no_decay_names, param_groups, set_lr
from .step import FusedStep, NonFiniteLossError, StepOutput, has_training_batchnorm
from .trainer import Components, DataLoaderFailed, RunInterrupted, Trainer, TrainState, freeze_for_epoch, parameter_counts, prepare_model

__all__ = [
    "CheckpointError",
    "CheckpointStore",
    "Components",
    "DataLoaderFailed",
    "MemoryFormat",
    "FusedStep",
    "NonFiniteLossError",
    "Precision",
    "RunInterrupted",
    "StepOutput",
    "TrainState",
    "Trainer",
    "build_optimizer",
    "choose_channels_last",
    "choose_precision",
    "cpu_has_bf16",
    "decide_channels_last",
    "describe_device",
    "freeze_for_epoch",
    "has_training_batchnorm",
    "load_weights",
    "no_decay_names",
    "param_groups",
    "parameter_counts",
    "prepare_model",
    "resolve_device",
    "save_weights",
    "set_lr",
    "sha256_file",
]
