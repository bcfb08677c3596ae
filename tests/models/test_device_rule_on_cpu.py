"""One device rule: only wmsd_ray/device.py names a device; models land where it says, in the
configured dtype, with the stochastic parts in float32."""
import ast
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from wmsd_ray.device import assigned_device
from wmsd_ray.models import build_backbone
from wmsd_ray.models.sampling import initial_noise, sde_sample

ROOT = Path(__file__).resolve().parents[2]
HELPER = ROOT / "wmsd_ray" / "device.py"


def device_names(source: str) -> list[str]:
    """Places in Python source that name a device: 'cpu'/'cuda' literals, torch.device(...),
    .cuda() and .cpu() calls."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.split(":")[0] in ("cpu", "cuda"):
            found.append(f"line {node.lineno}: {node.value!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if f.attr in ("cuda", "cpu") or (f.attr == "device" and isinstance(f.value, ast.Name) and f.value.id == "torch"):
                found.append(f"line {node.lineno}: .{f.attr}(...)")
    return found


def test_no_code_outside_the_device_helper_names_a_device():
    files = [p for d in ("wmsd_ray", "actors", "learners") for p in (ROOT / d).rglob("*.py") if p != HELPER]
    offenders = {str(p.relative_to(ROOT)): hits for p in files if (hits := device_names(p.read_text()))}
    assert len(files) > 50 and not offenders, offenders
    # the scan can fail: each form it looks for is found
    planted = "x = torch.zeros(3, device='cuda')\ny = x.cpu()\nz = torch.device('cpu')\nw = m.cuda()\n"
    assert len(device_names(planted)) == 5


def test_backbone_sits_on_the_assigned_device_in_its_dtype(text_encoder, corpus_batch):
    frames, captions = corpus_batch
    outs = {}
    for dtype in ("float32", "bfloat16"):
        cfg = tiny_config(f"model.dtype={dtype}")
        torch.manual_seed(0)
        bb = build_backbone(cfg.model, cfg.world, text_encoder)
        assert bb.device == assigned_device() and bb.dtype == getattr(torch, dtype)
        cond = bb.condition(frames[:, 0], captions)
        x = initial_noise(bb, cond, torch.Generator().manual_seed(1))
        traj = sde_sample(bb, cond, x, torch.Generator().manual_seed(2), eta=0.7)
        # the stochastic parts stay float32 whatever the weights' dtype
        assert traj.latents.dtype == torch.float32 and traj.log_probs.dtype == torch.float32
        assert torch.isfinite(traj.log_probs).all()
        outs[dtype] = bb.velocity(x, torch.full((4,), 0.5), cond)
    rel = (outs["bfloat16"] - outs["float32"]).norm() / outs["float32"].norm()
    assert 0 < rel < 0.05  # bf16 is a rounding of the same model, not another one


@pytest.mark.parametrize("name", ["auto", "cpu"])
def test_configured_vlm_device_resolves(name):
    from wmsd_ray.device import resolve

    assert resolve(name) == (assigned_device() if name == "auto" else torch.device("cpu"))
