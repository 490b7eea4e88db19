"""The built-ins' own lifecycle text says what the engine does (issue 23 §1: protocols asked up front, ε per micro-batch)."""

from __future__ import annotations

import rftbench_plugins.protocols as protocols
import rftbench_plugins.schedules as schedules


def test_protocol_text_says_every_epoch_is_asked_up_front():
    assert "at the start of every epoch" not in protocols.__doc__
    assert "up front" in protocols.__doc__


def test_schedule_text_says_step_granularity_is_per_micro_batch():
    assert "every optimiser step" not in schedules.__doc__
    assert "micro-batch" in schedules.__doc__
    assert "every step" not in str(schedules.EpsilonSchedulingParams.model_fields["granularity"].description)
