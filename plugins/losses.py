"""Built-in plugin ``losses``: standard CE, Classic AT (Madry), TRADES and MART.

Each factory returns a loss object following the contract of
:func:`rftbench.hookspecs.rftbench_add_losses`: flags saying which logits it needs, the
objective its attack maximises, and ``__call__(y, clean=…, adv=…)`` returning the batch mean.
"""

from __future__ import annotations

from typing import Literal

from typing import TYPE_CHECKING

from pydantic import Field

from rftbench import LossSpec, NoParams, Params, hookimpl
from rftbench._lazy import lazy_import

torch = lazy_import("torch")  # imported when a loss is first computed, not when plugins are listed
F = lazy_import("torch.nn.functional")

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from rftbench.attacks import Objective


class CrossEntropy:
    """Standard training: CE on the clean batch; no attack (the spec says ``adversarial=False``)."""

    uses_clean = True
    uses_adv = False

    def attack_objective(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Objective | None:
        return None

    def __call__(self, y: torch.Tensor, *, clean: torch.Tensor | None = None, adv: torch.Tensor | None = None) -> torch.Tensor:
        return F.cross_entropy(clean.float(), y)


class ClassicAT(CrossEntropy):
    """Classic AT (Madry et al. 2018): CE on the adversarial batch, crafted by maximising CE."""

    uses_clean = False
    uses_adv = True

    def __call__(self, y: torch.Tensor, *, clean: torch.Tensor | None = None, adv: torch.Tensor | None = None) -> torch.Tensor:
        return F.cross_entropy(adv.float(), y)


def _kl_clean_adv(clean: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """Per-example KL(p_clean ‖ p_adv), in fp32.

    The target enters as log p_clean (``log_target=True``): with ``F.softmax`` as the target, a
    class whose probability underflows to 0 (a logit gap above ~104 in fp32) has the gradient
    log 0 = −inf through the target, and the softmax backward turns 0·(−inf) into NaN — a finite
    loss with NaN gradients (seen in a linear probe of a robust backbone). The value is the same.
    """
    return F.kl_div(F.log_softmax(adv.float(), 1), F.log_softmax(clean.float(), 1), reduction="none",
                    log_target=True).sum(1)


#: Standard deviation of the original TRADES code's start around x for the KL attack.
START_NOISE = 0.001


class Trades(CrossEntropy):
    """TRADES (Zhang et al. 2019): CE(clean) + β·KL(p_clean ‖ p_adv), the KL averaged over the batch.

    ``inner="ce"`` crafts x_adv by maximising CE (the reference study); ``inner="kl"`` by
    maximising KL(p_clean ‖ p_adv) with p_clean from the eval-mode model, as in the original,
    starting from x + 0.001·N(0, 1) as the original code (``trades.py``) does: at x itself the
    KL and its gradient are zero, so the first step would follow floating-point noise.
    Gradients flow through both p_clean and p_adv in the outer loss, as in the original code.
    """

    uses_clean = True
    uses_adv = True

    def __init__(self, beta: float, inner: str):
        self.beta, self.inner = beta, inner

    def attack_objective(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Objective | None:
        if self.inner == "ce":
            return None
        with torch.no_grad():
            p_clean = F.softmax(model(x).float(), 1)

        def kl(logits: torch.Tensor, _y: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
            target = p_clean if index is None else p_clean[index]
            return F.kl_div(F.log_softmax(logits.float(), 1), target, reduction="none").sum(1)

        return kl

    def attack_start(self, x: torch.Tensor) -> torch.Tensor | None:
        """Where the attack starts: x + 0.001·N(0, 1) for the KL attack (original TRADES), else ``None``."""
        if self.inner != "kl":
            return None
        return x.detach().float() + START_NOISE * torch.randn(x.shape, device=x.device)

    def __call__(self, y: torch.Tensor, *, clean: torch.Tensor | None = None, adv: torch.Tensor | None = None) -> torch.Tensor:
        return F.cross_entropy(clean.float(), y) + self.beta * _kl_clean_adv(clean, adv).mean()


class Mart(CrossEntropy):
    """MART (Wang et al. 2020): BCE(adv) + β·KL(p_clean ‖ p_adv)·(1 − p_clean[y]), x_adv maximising CE.

    BCE(adv) = CE(adv, y) − log(1 − max_{k≠y} p_adv[k]), with the reference code's constants
    (``1.0001`` and ``1e-12`` inside the logs, ``1.0000001`` in the weight). The KL is written
    p_clean·(log p_clean − log(p_adv + 1e-12)) with log p_clean from ``log_softmax``: the reference's
    ``kl_div`` with ``softmax`` as target has NaN gradients where p_clean underflows to 0 (see
    ``_kl_clean_adv``); the value is the same.
    """

    uses_clean = True
    uses_adv = True

    def __init__(self, beta: float):
        self.beta = beta

    def __call__(self, y: torch.Tensor, *, clean: torch.Tensor | None = None, adv: torch.Tensor | None = None) -> torch.Tensor:
        adv, clean = adv.float(), clean.float()
        p_adv = F.softmax(adv, 1)
        top2 = p_adv.argsort(1)[:, -2:]
        other = torch.where(top2[:, -1] == y, top2[:, -2], top2[:, -1])
        bce = F.cross_entropy(adv, y) + F.nll_loss(torch.log(1.0001 - p_adv + 1e-12), other)
        p_clean = F.softmax(clean, 1)
        true_prob = p_clean.gather(1, y.unsqueeze(1)).squeeze(1)
        kl = (p_clean * (F.log_softmax(clean, 1) - torch.log(p_adv + 1e-12))).sum(1)
        return bce + self.beta * (kl * (1.0000001 - true_prob)).mean()


class TradesParams(Params):
    beta: float = Field(1.0, ge=0, le=1000, description="weight of the KL term (the study: 1.0; the TRADES paper: 6.0)")
    inner: Literal["ce", "kl"] = Field(
        "ce", description="what the attack maximises: 'ce' (the reference study) or 'kl' (original TRADES)"
    )


class MartParams(Params):
    beta: float = Field(6.0, ge=0, le=1000, description="weight of the misclassification-aware KL term (MART: 6.0)")


@hookimpl
def rftbench_add_losses() -> list[LossSpec]:
    return [
        LossSpec(name="ce", adversarial=False, params=NoParams, factory=CrossEntropy,
                 description="standard cross-entropy on clean images (no attack)"),
        LossSpec(name="classic_at", params=NoParams, factory=ClassicAT,
                 description="Classic AT (Madry et al. 2018): cross-entropy on adversarial images"),
        LossSpec(name="trades", params=TradesParams, factory=Trades,
                 description="TRADES (Zhang et al. 2019): CE(clean) + beta·KL(clean ‖ adversarial)"),
        LossSpec(name="mart", params=MartParams, factory=Mart,
                 description="MART (Wang et al. 2020): boosted CE(adversarial) + beta·(1 − p_y)·KL(clean ‖ adversarial)"),
    ]
