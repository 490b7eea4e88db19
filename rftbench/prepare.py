"""Building a run: ``prepare(config)`` turns a resolved config into its components, model and data (writes nothing).

Below :mod:`rftbench.runner` (which trains, evaluates and records) so that the sweep's tune
trials and the tools that only need a built model import it without the runner.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from .cards import DatasetCard, RepresentationCard
from .config import Component, RunConfig
from .data import RunData, build_data
from .engine import Components, MemoryFormat, Precision, choose_precision, decide_channels_last, resolve_device
from .engine.threads import OtherLoad, ThreadChoice, apply_threads, set_threads, under_load
from .errors import ConfigError, RftbenchError
from .model import Classifier, build_classifier
from .plugins import PluginManager

def check_data_settings(config: RunConfig, data: RunData, manager: PluginManager) -> None:
    """Settings that depend on the data, checked before training (each error names the field and the fix)."""
    from .evaluation.evaluate import check_data, resolve_suite

    n_test = _length(data.test)
    if config.n_eval is not None and n_test is not None and config.n_eval > n_test:
        raise ConfigError(f"invalid run config for this data (nothing was trained):\n  n_eval: {config.n_eval} is more than "
                          f"the {n_test} images of {config.dataset!r}'s test split; use n_eval ≤ {n_test} (or leave it unset)")
    try:
        threats, _ = resolve_suite(config.evaluation, manager)
        check_data(data.test, config.n_eval, threats)  # the evaluation's own checks of the data, before training
    except RftbenchError as err:
        raise ConfigError(f"dataset {config.dataset!r}: {err} (nothing was trained)") from None
    if config.monitor is not None:
        from .engine.monitor import check_monitor

        try:
            check_monitor(config.monitor, data.val, manager)
        except ConfigError as err:
            raise ConfigError(f"invalid run config for this data (nothing was trained):\n  {err}") from None


def _length(dataset: Any) -> int | None:
    try:
        return len(dataset)
    except TypeError:
        return None


def build_components(config: RunConfig, manager: PluginManager) -> Components:
    """The runtime objects of the config's loss, protocol, training threat and schedules."""

    def build(kind: str, component: Component) -> Any:
        return manager.get(kind, component.name).build(**component.params)

    adversarial = manager.get("loss", config.loss.name).adversarial  # the spec's: the one source
    return Components(
        loss=build("loss", config.loss),
        protocol=build("protocol", config.protocol),
        threat=build("threat_model", config.threat) if adversarial else None,
        eps_schedule=build("schedule", config.eps_schedule),
        lr_schedule=build("schedule", config.lr_schedule),
        adversarial=adversarial,
    )


@dataclass
class Setup:
    """What training a resolved config needs: its cards, components, device, model and data."""

    representation: RepresentationCard
    dataset: DatasetCard
    parts: Components
    device: torch.device
    precision: Precision
    model: Classifier
    memory_format: MemoryFormat
    data: RunData
    threads: ThreadChoice | None = None
    #: torch's CPU RNG state right after the seeded build (``torch.set_rng_state`` it to train as ``run`` does).
    rng_state: torch.Tensor | None = None

    @property
    def channels_last(self) -> bool:
        return self.memory_format.channels_last


def prepare(config: RunConfig, manager: PluginManager) -> Setup:
    """Build a resolved config's components, model (seeded with ``config.seed``) and data; writes nothing.

    The build draws from torch's CPU generator seeded with ``config.seed`` inside
    ``torch.random.fork_rng``: the caller's global RNG state is left as it was. The state the
    build ended in is ``Setup.rng_state`` (``run`` continues training from it).
    """
    rep = manager.get("representation", config.representation)
    data_card = manager.get("dataset", config.dataset)
    parts = build_components(config, manager)
    threads = apply_threads(config.threads)
    load = OtherLoad() if threads.auto else None  # measured while the model and data are built (see engine.threads)
    device = resolve_device(config.device)
    if device.type == "cuda" and distributed_rank_world()[1] > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    precision = choose_precision(config.precision, device)
    with torch.random.fork_rng(devices=[]):  # CPU only: the model is built on the CPU, CUDA's RNG is not touched
        torch.default_generator.manual_seed(config.seed)
        model = build_classifier(rep, data_card.num_classes, manager=manager)
        memory_format = decide_channels_last(config.channels_last, model, device)
        from .data import resolve_workers

        rank, world = distributed_rank_world()
        data = build_data(rep, data_card, batch_size=config.batch_size, seed=config.seed, root=config.data_root, manager=manager,
                          pin_memory=device.type == "cuda", num_workers=resolve_workers(config.data.num_workers, device.type),
                          cache=config.data.cache, augment_on=config.data.augment_on, rank=rank, world=world)
        rng_state = torch.get_rng_state()
    if load is not None:
        threads = set_threads(under_load(threads, load.busy()))
    return Setup(rep, data_card, parts, device, precision, model, memory_format, data, threads, rng_state)


def init_distributed(requested_device: str = "auto") -> tuple[int, int]:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1), initialise the default process group once: gloo on CPU, NCCL on CUDA.

    Returns ``(rank, world size)``; ``(0, 1)`` outside torchrun.
    """
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world > 1 and torch.distributed.is_available() and not torch.distributed.is_initialized():
        cuda = requested_device != "cpu" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return distributed_rank_world()


def distributed_rank_world() -> tuple[int, int]:
    """``(rank, world size)`` of this process: from an initialised process group, else ``(0, 1)``."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


__all__ = ["Setup", "build_components", "check_data_settings", "distributed_rank_world", "init_distributed", "prepare"]
