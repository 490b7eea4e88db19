"""Hook specifications: the plugin author's manual.

A plugin is any module registered under the entry-point group ``rftbench``::

    [project.entry-points.rftbench]
    my_plugin = "my_package.rftbench_plugin"

It implements any of the hooks below with :data:`rftbench.hookimpl`. Every hook takes no
argument and returns a **list**: spec objects (or plain dicts that validate as them) for code
contributions, cards or card folders for zoo contributions. The core validates each item when
plugins are discovered; a bad item is refused and reported with the plugin's name, and two
contributions of the same kind and name are a conflict: both plugins are listed, and using the
name is an error naming both. Hooks are called once per process, at discovery: keep plugin
modules light (import torch and other heavy libraries in factories; see
:func:`rftbench.specs.lazy`). docs/plugins.md is the guide, with an example per hook.

The built-in plugins in ``plugins/`` use exactly these hooks, registered through the same
entry-point group, so every one of them is an example.
"""

from __future__ import annotations

from pathlib import Path

import pluggy

from .cards import DatasetCard, RepresentationCard
from .specs import (
    KINDS,
    ArchitectureSpec,
    AttackSpec,
    DatasetSourceSpec,
    ExecutorSpec,
    LossSpec,
    MetricSpec,
    ProtocolSpec,
    PublisherSpec,
    ScheduleSpec,
    ThreatModelSpec,
)

PROJECT = "rftbench"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

# ----------------------------------------------------------------------------------------
# Models: what is fine-tuned
# ----------------------------------------------------------------------------------------


@hookspec
def rftbench_add_architectures() -> list[ArchitectureSpec]:
    """Contribute architectures: code that builds a network for a representation card.

    Called once, when plugins are discovered. A card whose ``source`` equals the spec's
    ``name`` is built by its factory::

        factory(card: RepresentationCard, *, pretrained: bool, **params) -> torch.nn.Module

    The module takes images in [0, 1] at ``card.input.resolution``, normalises them inside
    (``card.input.mean``/``std``, after flipping to BGR where ``card.input.channel_order`` says
    so), and exposes ``num_features`` (int) and ``forward_features(x) -> Tensor[B, num_features]``
    (the penultimate layer, pooled; no classifier: :class:`rftbench.model.Classifier` adds a fresh
    linear head). With ``pretrained=False`` it must build without any download (tests
    instantiate every card so). ``pretrained`` reaches the factory through ``spec.build``, so
    the spec's ``params`` model must declare it (the built-ins share
    :class:`rftbench.ArchitectureParams`; subclass it for a third-party architecture).

    With ``pretrained=True`` the weights come from :func:`rftbench.fetch.weights_file`: the
    card's pin (``weights.revision`` / ``weights.sha256``) or the one ``rftbench zoo fetch``
    recorded, read from the cache only when ``HF_HUB_OFFLINE=1``; files are deserialised
    safely (safetensors or ``torch.load(weights_only=True)``) and loaded strictly, so a
    checkpoint that does not fit the architecture is an error, never a silent random init.
    The built-ins: ``timm``, ``open_clip``, ``hf`` (transformers), ``url`` (original
    checkpoints converted onto timm).

    :return: a list of :class:`~rftbench.specs.ArchitectureSpec` (or dicts validating as one).
    """


@hookspec
def rftbench_add_representations() -> list[RepresentationCard | Path]:
    """Contribute representation cards (architecture + pinned weights + preprocessing).

    Called once, when plugins are discovered.

    :return: a list whose items are :class:`~rftbench.cards.RepresentationCard` objects, or
        paths to card files or to folders of ``*.yaml`` cards. A card that fails validation
        is refused and reported with its file name and field.
    """


# ----------------------------------------------------------------------------------------
# Data: what it is fine-tuned on
# ----------------------------------------------------------------------------------------


@hookspec
def rftbench_add_dataset_sources() -> list[DatasetSourceSpec]:
    """Contribute dataset sources: code that loads the splits of dataset cards.

    A dataset card whose ``source`` equals the spec's ``name`` is loaded by::

        factory(card: DatasetCard, *, root: Path, download: bool, **params)
            -> dict[str, torch.utils.data.Dataset]   # keys among "train", "val", "test"

    Items of each split are ``(image, label)``: a PIL image or a float tensor in [0, 1]
    (C, H, W) and an int label in ``range(card.num_classes)``. Splits should expose
    ``targets`` (the labels, readable without loading images) and ``classes``, which
    :func:`rftbench.data.check_classes` compares with the card. A source applies the card's
    ``splits`` rules itself with :func:`rftbench.make_splits` (as the built-ins do:
    official, carved, stratified, stratified subsample; deterministic given ``seed``), and
    raises an :class:`~rftbench.errors.RftbenchError` naming the card, the folder and the fix
    when files are missing or incomplete. ``root`` is shared by every dataset: a source keeps
    its files in a sub-folder of its own.

    :return: a list of :class:`~rftbench.specs.DatasetSourceSpec`.
    """


@hookspec
def rftbench_add_datasets() -> list[DatasetCard | Path]:
    """Contribute dataset cards (a downstream task with its split rules and provenance).

    :return: :class:`~rftbench.cards.DatasetCard` objects, or paths to card files or folders.
    """


# ----------------------------------------------------------------------------------------
# Training: how it is fine-tuned
# ----------------------------------------------------------------------------------------


@hookspec
def rftbench_add_losses() -> list[LossSpec]:
    """Contribute training objectives (standard CE, Classic AT, TRADES, MART, …).

    ``factory(**params)`` returns the loss object the engine calls on every batch. Whether it
    needs adversarial examples is the spec's ``adversarial`` (the one source the engine reads:
    ``False`` builds no training threat and runs no attack); the object need not say it, and one
    whose own ``adversarial`` attribute differs is refused when built. The object has:

    - ``uses_clean: bool`` / ``uses_adv: bool``: which logits the objective needs;
    - ``attack_objective(model, x, y) -> Objective | None``: called in the attack phase (model
      in eval mode, parameters frozen, under the attack's autocast) before crafting ``x_adv``;
      returns the per-example objective ``(logits, y, index) -> Tensor[B]`` the attack
      maximises (see :mod:`rftbench.attacks`), or ``None`` for cross-entropy;
    - optionally ``attack_start(x) -> Tensor | None``: where the attack's first start begins
      (TRADES' KL attack: x + 0.001·N(0, 1)); the engine passes it to the threat model's
      ``perturb`` as ``x_init=``, which passes it to its attack; ``None`` or absent: the
      attack's own start;
    - ``__call__(y, *, clean=None, adv=None) -> Tensor``: the scalar training loss (batch
      mean) from the logits of the clean and adversarial batches (those it uses; each
      ``[B, num_classes]``, possibly low precision: compute in fp32).

    The engine computes the logits in train mode, in one forward of ``cat([x, x_adv])`` when
    the model has no batch norm in train mode (so batch statistics are unchanged), else in two.

    :return: a list of :class:`~rftbench.specs.LossSpec`.
    """


@hookspec
def rftbench_add_protocols() -> list[ProtocolSpec]:
    """Contribute fine-tuning protocols: which parameters learn, and how (LP, FFT, LP-FT, partial-k).

    ``factory(**params)`` returns a protocol object with one method::

        trainable(model: rftbench.model.Classifier, epoch: int, epochs: int) -> set[str]

    the names (as in ``model.named_parameters()``) of the parameters that learn during
    ``epoch`` (0-based) of an ``epochs``-epoch run. The engine asks for every epoch once, up
    front, before training starts (``trainable(model, e, epochs)`` for ``e`` in
    ``range(epochs)``, on the prepared model), so the answer must depend on ``epoch`` only, not
    on training state; at the start of each epoch it freezes every other parameter, and keeps in eval mode each module none of whose parameters
    learn. Learning rate and weight decay are the optimiser's (separate for ``backbone.*`` and
    ``head.*``; never on biases and norm parameters). An epoch in which nothing learns stops
    the run with a :class:`~rftbench.errors.ConfigError`; a protocol raises one itself for
    parameters that do not fit the model (e.g. ``k`` larger than the number of blocks).

    A protocol that adds layers (LoRA, adapters) also defines ``prepare(model) -> None``: it
    changes the model in place (on CPU, from a seeded RNG), raising a ``ConfigError`` for
    parameters that do not fit it (a target matching no module, a rank above a layer's width).
    The engine calls it once before asking ``trainable`` and before loading a checkpoint;
    the run's ``model.json`` then records the protocol, and :func:`rftbench.load_model` calls
    ``prepare`` on the rebuilt model before loading the trained weights (which hold the added
    layers). Every run's record gives ``parameters``: trainable and total counts.

    :return: a list of :class:`~rftbench.specs.ProtocolSpec`.
    """


@hookspec
def rftbench_add_schedules() -> list[ScheduleSpec]:
    """Contribute schedules: a multiplier of a base value (ε or learning rate) over training.

    ``factory(**params)`` returns a callable ``(t: float, total: float) -> float`` where ``t``
    is the training time in epochs (fractional within an epoch, ``epoch + i / micro-batches
    per epoch``) and ``total`` the number of epochs. The engine evaluates an ε schedule at every
    micro-batch and an LR schedule at the first micro-batch of every accumulation window (every
    optimiser step; the same thing without ``effective_batch_size``); the result multiplies the base ε
    of the training threat model or the base learning rates. It may also define
    ``validate(total) -> None``, called once before training, raising a
    :class:`~rftbench.errors.ConfigError` for parameters that do not fit the run (T1 > T2).
    ``targets`` on the spec says whether it applies to ε, to the LR, or both.

    :return: a list of :class:`~rftbench.specs.ScheduleSpec`.
    """


# ----------------------------------------------------------------------------------------
# Evaluation: how it is measured
# ----------------------------------------------------------------------------------------


@hookspec
def rftbench_add_threat_models() -> list[ThreatModelSpec]:
    """Contribute threat models: a perturbation family with a budget and the attack that probes it.

    Used both for training (the run config's ``threat``) and at test time (the evaluation
    suite). ``factory(**params)`` returns an object satisfying
    :class:`rftbench.threat.ThreatModel`: ``norm``, ``eps``, ``label()`` and
    ``perturb(model, x, y, *, eps=None) -> x_adv`` (images in [0, 1], perturbation and
    projection in fp32). For training, the engine also passes ``objective=`` (the loss's
    attack objective) when the loss asks for one, and ``x_init=`` when the loss has an
    ``attack_start``: the attack must start there (TRADES' KL has a zero gradient at x, so an
    attack that starts at x returns x; :func:`rftbench.testing.check` fails a threat model that
    does). An object may offer ``state_dict()`` /
    ``load_state_dict()`` for RNG state the checkpoint should keep. Parameters carry the budget
    with its bounds (an ε on the wrong scale is refused by validation, naming the field).

    At test time the evaluator (:func:`rftbench.evaluation.evaluate`) attacks only the points
    classified correctly, passing ``early_stop=True`` to ``perturb`` when it accepts it. A threat
    model may instead measure a batch itself: it is then a :class:`rftbench.threat.BatchEvaluator`,
    with ``evaluate_batch(model, x, y, *, index) -> {"correct": Tensor[B], …}`` (``index``: the
    images' positions in the test set; other keys, ``"a/b"`` nested, are averaged into the
    result), optionally ``evaluate_all(model, x, y, *, index, batch_size, device)`` on the whole
    set at once (:class:`rftbench.threat.SetEvaluator`, preferred by the final evaluation), and
    adds fields and flags with ``report() -> dict`` once all batches ran (the ``corruptions``
    threat model does). A threat model running a registered attack (``threat.attack``, what
    :func:`rftbench.attacks.get_attack` returns) is measured by the attack spec's ``evaluator``
    when it has one (``autoattack``'s, with the accuracy after each attack). One rule decides,
    for every evaluation path: :func:`rftbench.threat.batch_evaluator`.

    :return: a list of :class:`~rftbench.specs.ThreatModelSpec`.
    """


@hookspec
def rftbench_add_attacks() -> list[AttackSpec]:
    """Contribute attacks: algorithms that find a perturbation within a threat model's budget.

    A threat model names its attack (``threat: {name: linf, attack: pgd}``); the attack must
    list the threat's norm in ``norms``. ``default_steps`` fills the threat's ``steps`` and
    ``random_start`` its ``random_start`` when the config leaves them unset, and an attack
    whose ``default_for`` lists a norm is the one used for that norm when none is named (the
    built-ins: ``apgd-ce`` for L∞ and L2, ``apgd-l1`` for L1). ``factory(**params)`` returns
    the run function, called at every attack (training batches, evaluation batches)::

        run(model, x, y, *, norm, eps, steps, step_size, restarts, random_start,
            generator, early_stop, objective, x_init, **_) -> x_adv

    on the model's device, with the model in eval mode and its parameters frozen, ``x`` images
    in [0, 1] (fp32), ``y`` int labels; it returns perturbed copies within the ``norm`` ball of
    radius ``eps`` and the [0, 1] box, computed in fp32 whatever autocast context it runs in
    (a training-only attack may say otherwise, as ``n-fgsm``, whose points lie up to 3·eps away;
    an evaluation with it is flagged ``budget_violation``). ``step_size=None`` means the attack's own rule; ``generator`` (a ``torch.Generator`` or
    ``None``) drives random starts; ``early_stop=True`` (evaluation) may drop points once
    broken; ``objective(logits, y, index) -> Tensor[B]`` replaces cross-entropy (a loss's
    attack objective, e.g. TRADES' KL; ``index`` are the rows' positions in ``x``, for
    objectives that keep per-example state such as clean logits). ``x_init`` (``None`` or a
    tensor like ``x``) is where the first start begins when the loss asks for one (TRADES' KL
    start): a gradient attack must start there, not at ``x`` or a random point, or it returns
    ``x`` for an objective whose gradient is zero at ``x`` (:func:`rftbench.testing.check` fails
    it). Other arguments it has no use for are accepted and ignored. An attack that measures
    evaluation batches itself gives its spec ``evaluator=make``: ``make(threat)`` returns a
    :class:`rftbench.threat.BatchEvaluator` (or :class:`~rftbench.threat.SetEvaluator`) for a
    threat model running it (see :func:`rftbench_add_threat_models`); :func:`rftbench.testing.check`
    checks what it returns.

    :return: a list of :class:`~rftbench.specs.AttackSpec`.
    """


@hookspec
def rftbench_add_metrics() -> list[MetricSpec]:
    """Contribute metrics computed on a trained model (expected robustness, AS, margin consistency, …).

    Metrics are items of an evaluation suite, like threat models, and run after them.
    ``factory(**params)`` returns an object with ``label() -> str`` (its key in the result's
    ``metrics``, e.g. ``expected_robustness:linf:4/255``) and ``compute(ctx) -> dict``, where
    ``ctx`` is a :class:`rftbench.evaluation.EvalContext`: the model (eval mode, parameters
    frozen), the evaluated points (``ctx.batches()``), their clean logits and labels, the
    results so far (``ctx.results["threats"]``), the seed and ``ctx.build_threat(name, **params)``.
    The returned mapping must be JSON-able; a ``"flags"`` list in it joins the result's
    reliability flags. An optional ``plot(record, directory) -> list[Path]`` writes figures
    when the evaluation has an output folder. Raise
    :class:`rftbench.evaluation.EvaluationError` for a model the metric cannot measure.

    :return: a list of :class:`~rftbench.specs.MetricSpec`.
    """


# ----------------------------------------------------------------------------------------
# Scale and publication
# ----------------------------------------------------------------------------------------


@hookspec
def rftbench_add_executors() -> list[ExecutorSpec]:
    """Contribute sweep executors (in-process, Ray, SLURM through submitit, …).

    A sweep file's ``executor: {name: …, param: …}`` (or ``rftbench sweep --executor``) picks one;
    ``factory(**params)`` returns an executor object (see :class:`rftbench.sweep.Executor`) with:

    - ``slots: int | None`` — how many runs the runner keeps submitted at once (``None``: all);
    - ``start(results_dir: Path) -> None`` — connect and check, before any run: raise
      :class:`rftbench.sweep.ExecutorError` naming the cause and the fix when it cannot start
      (no cluster at the address, no ``sbatch``, a missing package, a resource no node has);
    - ``submit(fn, items: list) -> list[handle]`` — run ``fn(item)`` for each item, wherever the
      executor runs things; ``fn`` is :func:`rftbench.sweep.execute` and each item a picklable
      :class:`rftbench.sweep.RunTask`; a batch may become one job array;
    - ``wait(handles, timeout: float) -> list[handle]`` — block up to ``timeout`` seconds and
      return the handles that finished (possibly none);
    - ``result(handle)`` — ``fn``'s return value (an :class:`rftbench.sweep.Outcome`), raising if
      the worker itself died (the runner records that as a failed attempt);
    - ``shutdown() -> None`` — release what ``start`` acquired (called also after an interrupt).

    Executors never touch results: the worker function claims the run in the shared results
    directory, runs it, and writes its record or its failure there. So an executor only needs
    to run a picklable function somewhere that sees that directory.

    :return: a list of :class:`~rftbench.specs.ExecutorSpec`.
    """


@hookspec
def rftbench_add_publishers() -> list[PublisherSpec]:
    """Contribute publishers of leaderboard entries (the Hugging Face Hub, …).

    ``rftbench submit --publisher NAME`` builds one with ``factory(repo=…, **params)`` and uses
    the object it returns (see :class:`rftbench.leaderboard.submit.Publisher`):

    - ``target: str``: a stable name of where entries go (the local outbox is kept per target);
    - ``identity() -> str``: who submits (e.g. the Hub user of the token); called only when the
      user gave no ``--submitter``; raise :class:`~rftbench.leaderboard.errors.AuthError` early
      on missing or refused credentials;
    - ``publish(entry: rftbench.leaderboard.entry.Entry, *, dry_run: bool = False)
      -> rftbench.leaderboard.outbox.Submission``: refuse a duplicate with
      ``DuplicateEntryError``, then publish the whole entry or nothing (status ``opened``,
      with ``pr_url`` when a pull request was opened; ``dry-run`` when ``dry_run``). Failures
      raise :class:`~rftbench.errors.RftbenchError` subclasses (``AuthError``,
      ``RepoNotFoundError``, ``OfflineError``, ``HubError``) whose messages never contain a
      credential. The entry is already kept locally when ``publish`` is called.

    :return: a list of :class:`~rftbench.specs.PublisherSpec`.
    """


#: Which hook contributes which kind, in discovery order: ``rftbench_add_<kind>s`` for every kind of
#: :data:`rftbench.specs.KINDS` (``loss`` → ``rftbench_add_losses``).
HOOK_FOR_KIND: dict[str, str] = {kind: f"rftbench_add_{kind}{'es' if kind.endswith('s') else 's'}" for kind in KINDS}
