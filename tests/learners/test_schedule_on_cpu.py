"""Learning-rate schedules: warm-up, a flat stretch, then cosine decay to the floor."""
import pytest

from learners.schedule import LRSchedule, phase_schedule
from tests.conftest import tiny_config
from wmsd_ray.errors import ConfigError


def test_cosine_schedule_warms_up_holds_then_decays_to_its_floor():
    s = LRSchedule(peak=1.0, total=100, kind="cosine", warmup=10, decay_fraction=0.5, min_ratio=0.05)
    assert s.at(0) == pytest.approx(0.1) and s.at(9) == pytest.approx(1.0)
    assert s.at(10) == s.at(50) == 1.0  # flat until the last half
    decay = [s.at(u) for u in range(50, 101)]
    assert all(a > b for a, b in zip(decay, decay[1:]))
    assert s.at(75) == pytest.approx(0.525) and s.at(100) == pytest.approx(0.05)
    assert s.at(500) == pytest.approx(0.05)  # past the end it stays at the floor


def test_constant_schedule_and_unknown_kind():
    assert LRSchedule(peak=3e-4, total=10, kind="constant", warmup=2).at(7) == 3e-4
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        LRSchedule(peak=1.0, total=1, kind="linear")


def test_rl_and_its_ablation_share_one_schedule_distillation_has_its_own():
    cfg = tiny_config("learner.lr=2e-3", "learner.rl_lr=5e-4")
    assert phase_schedule(cfg.learner, "distill", 500).peak == 2e-3
    rl, ablation = phase_schedule(cfg.learner, "rl", 200), phase_schedule(cfg.learner, "ablation", 200)
    assert rl == ablation and rl.peak == 5e-4
    assert (cfg.learner.threads_for("distill"), cfg.learner.threads_for("rl")) == (2, 1)  # RL keeps learner.threads
    with pytest.raises(ConfigError, match="learner.schedule"):
        tiny_config("learner.schedule=step")
