"""rftbench.engine.guards: known backend bugs never reach an affected model on an affected CPU."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from rftbench.engine import decide_channels_last, guards, hardware
from rftbench_plugins.offline import ARCHITECTURES, MiniResNet

AVX2_ONLY = frozenset({"sse4_1", "avx", "avx2", "fma"})
AVX512 = AVX2_ONLY | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"}


def micro_resnet() -> nn.Module:
    """The test cards' micro backbone: widths 4, so its 1x1 stride-2 shortcut has 4 input channels."""
    return MiniResNet(widths=(4, 8, 8))


@pytest.fixture
def cpu(monkeypatch):
    """Pretend to be an x86-64 CPU with the given flags and oneDNN ISA cap."""

    def set_cpu(flags: frozenset[str], cap: str | None = None) -> None:
        monkeypatch.setattr(hardware, "cpu_flags", lambda: flags)
        monkeypatch.setattr(guards.platform, "machine", lambda: "x86_64")
        monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
        if cap is None:
            monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
        else:
            monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)

    return set_cpu


def test_the_affected_convolutions_are_found():
    assert guards.affected_1x1_convolutions(micro_resnet()) == ["stages.1.0.shortcut.0"]  # stage 2 has 8 in
    assert guards.affected_1x1_convolutions(MiniResNet()) == []  # widths 16: at or above oneDNN's AVX2 block of 8
    assert guards.affected_1x1_convolutions(nn.Conv2d(4, 8, 1, stride=1)) == []
    assert guards.affected_1x1_convolutions(nn.Conv2d(4, 8, 3, stride=2)) == []
    assert guards.affected_1x1_convolutions(nn.Conv2d(16, 16, 1, stride=2, groups=4)) == ["<model>"]  # 4 per group


@pytest.mark.parametrize("flags,cap,affected", [
    (AVX2_ONLY, None, True),
    (AVX512, None, False),
    (AVX512, "AVX2", True),          # how CI runs the engine tests as on an AVX2-only CPU
    (AVX512, "avx2_vnni", True),
    (AVX512, "AVX512_CORE_BF16", False),
])
def test_auto_turns_channels_last_off_only_for_affected_models_on_affected_cpus(cpu, flags, cap, affected):
    cpu(flags, cap)
    choice = decide_channels_last("auto", micro_resnet(), "cpu")
    assert choice.channels_last is not affected
    assert (choice.guard == "onednn-6035") is affected
    # an unaffected model keeps channels_last on every CPU
    assert decide_channels_last("auto", MiniResNet(), "cpu").channels_last
    # the guard is about oneDNN on CPUs: CUDA keeps channels_last
    assert decide_channels_last("auto", micro_resnet(), "cuda").channels_last


def test_channels_last_on_is_overridden_with_a_warning_naming_the_bug(cpu, caplog):
    cpu(AVX2_ONLY)
    guards._logged.clear()
    with caplog.at_level(logging.INFO, logger="rftbench"):
        choice = decide_channels_last("on", micro_resnet(), "cpu")
        decide_channels_last("on", micro_resnet(), "cpu")  # logged once
    assert not choice.channels_last and "#6035" in choice.reason
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "oneDNN bug #6035" in warnings[0].getMessage() and "contiguous layout instead" in warnings[0].getMessage()
    assert not decide_channels_last("off", micro_resnet(), "cpu").channels_last


def test_the_cap_also_decides_bf16(cpu):
    cpu(AVX512 | {"avx512_bf16"})
    assert hardware.cpu_has_bf16()
    cpu(AVX512 | {"avx512_bf16"}, "AVX2")
    assert not hardware.cpu_has_bf16()
    cpu(AVX512 | {"avx512_bf16"}, "AVX512_CORE")
    assert not hardware.cpu_has_bf16()


def test_the_choice_is_recorded_in_the_provenance(cpu, engine_manager, tmp_path):
    import rftbench

    cpu(AVX2_ONLY)
    record = rftbench.run({"representation": "micro_resnet.test", "dataset": "digits_small", "loss": "ce", "epochs": 1,
                           "precision": "fp32", "evaluation": [], "output_dir": str(tmp_path / "runs")}, manager=engine_manager)
    assert record.provenance["channels_last"] is False
    assert record.provenance["guards"] == ["onednn-6035"]
    assert "#6035" in record.provenance["channels_last_reason"]


# The guard's reason to exist, checked for real: on a CPU where oneDNN runs its AVX2 kernels (any x86-64 CPU
# under ONEDNN_MAX_CPU_ISA=AVX2), the weight gradient of the micro backbone under the engine's choice equals the
# contiguous fp32 one, with 1 and 2 threads. Without the guard this child process aborts (1 thread) or its
# gradients differ (2 threads). A child process, since the ISA cap is read once, when oneDNN starts.
_GRADIENT_CHILD = textwrap.dedent("""
    import json, sys, torch
    from rftbench.engine import decide_channels_last
    from rftbench_plugins.offline import MiniResNet

    torch.set_num_threads(int(sys.argv[1]))
    torch.manual_seed(0)
    reference = MiniResNet(widths=(4, 8, 8)).train()
    x, y = torch.rand(16, 3, 32, 32), torch.randint(0, 8, (16,))

    def weight_grads(channels_last):
        model = MiniResNet(widths=(4, 8, 8)).train()
        model.load_state_dict(reference.state_dict())
        inputs = x.clone()
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        torch.nn.functional.cross_entropy(model(inputs), y).backward()
        return {n: p.grad.contiguous() for n, p in model.named_parameters()}

    choice = decide_channels_last("auto", reference, "cpu")
    ours, plain = weight_grads(choice.channels_last), weight_grads(False)
    diff = max(float((ours[n] - plain[n]).abs().max() / plain[n].abs().max().clamp_min(1e-12)) for n in plain)
    shortcut = ours["stages.1.0.shortcut.0.weight"].flatten()[:4].tolist()
    print(json.dumps({"channels_last": choice.channels_last, "guard": choice.guard, "rel_diff": diff, "shortcut": shortcut}))
""")


@pytest.mark.skipif(not (sys.platform.startswith("linux") and os.uname().machine == "x86_64"), reason="oneDNN's x86 kernels")
def test_weight_gradients_under_the_engines_choice_equal_the_contiguous_ones_on_avx2():
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    results = []
    for threads in (1, 2):
        env["OMP_NUM_THREADS"] = str(threads)
        done = subprocess.run([sys.executable, "-c", _GRADIENT_CHILD, str(threads)], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, f"{threads} thread(s): exit {done.returncode}\n{done.stderr[-2000:]}"
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert result["guard"] == "onednn-6035" and not result["channels_last"]
        assert result["rel_diff"] < 1e-5, result
        results.append(result)
    # results do not depend on the number of threads beyond floating-point order
    assert torch.allclose(torch.tensor(results[0]["shortcut"]), torch.tensor(results[1]["shortcut"]), rtol=1e-4, atol=1e-7)


def test_registered_micro_architecture_is_the_affected_shape():
    from rftbench.cards import RepresentationCard

    card = RepresentationCard(id="micro_resnet.x", source="recipe", model="micro_resnet", family="convolutional", size="tiny",
                              params_m=0.002, input={"resolution": 16, "mean": (0.5,) * 3, "std": (0.25,) * 3},
                              pretraining={"strategy": "none", "data": "none"}, provenance={"license": "Apache-2.0"})
    assert guards.affected_1x1_convolutions(ARCHITECTURES["micro_resnet"](card))


from tests.plugins.engine_cards import engine_manager  # noqa: E402,F401  (fixture)
