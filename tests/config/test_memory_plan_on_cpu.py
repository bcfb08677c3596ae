"""benchmarks/memory_plan.py: real-size denoisers built on the meta device give the published
parameter counts, and each cluster preset's pools follow from the plan."""
import importlib.util
from pathlib import Path

import pytest

from wmsd_ray.config import load_config

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("memory_plan", ROOT / "benchmarks" / "memory_plan.py")
memory_plan = importlib.util.module_from_spec(spec)
spec.loader.exec_module(memory_plan)


@pytest.mark.parametrize("preset", ["ltx2_paper.yaml", "hunyuan15_paper.yaml", "wan22_i2v.yaml"])
def test_preset_plan_counts_the_published_size_and_its_pools_follow(preset, tolerance=0.01):
    cfg = load_config(str(ROOT / "configs" / preset))
    plan = memory_plan.plan(cfg, 80.0)
    published = plan["published_b"] * 1e9
    assert abs(plan["params"] - published) <= tolerance * published, plan["params"]
    assert memory_plan.check_preset(cfg, plan) == []
    assert plan["learner"]["gradient checkpointing"]["gb"] < plan["learner"]["no checkpointing"]["gb"]
    # the check can fail: one learner worker cannot hold the preset's batch, and the plan says so
    cfg.learner.workers = 1
    cfg.learner.phase_batch = {"distill": cfg.learner.batch_size}
    assert any("learner.workers" in p for p in memory_plan.check_preset(cfg, memory_plan.plan(cfg, 80.0)))


@pytest.mark.slow
def test_gpu_smoke_runs_on_the_cpu():
    """benchmarks/gpu_smoke.py, the script a GPU machine runs, on the CPU with the tiny configs."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_smoke.py"), "--device", "cpu", "--steps", "2",
                          "--group", "2"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    lines = [ln for ln in out.stdout.splitlines() if "learner step" in ln]
    assert out.returncode == 0 and len(lines) == 3, out.stdout[-2000:] + out.stderr[-2000:]
    assert all("on cpu" in ln and "videos/s" in ln and "adapter sync" in ln for ln in lines)
