"""GPU smoke: each backbone class through a sampler group and ten learner steps, with figures.

For Wan, LTX-2 and HunyuanVideo-1.5: a random pipeline in the real repo layout (the tiny one of
the tests, or ``--size mid``: the same with a denoiser of 512-wide, 8-layer attention) loaded
through ``model.hub``; one sampler group (G videos, Flow-GRPO SDE, float32 log-probs kept); ten
learner steps (DeepSpeed ZeRO-2, bf16 weights, LoRA) on that group; the adapter exported and
applied to the sampler as the weight store does. Prints per backbone: learner step time,
sampler videos/s, adapter sync time, and peak memory (GPU allocated, or process RSS on CPU).
Usage: python benchmarks/gpu_smoke.py [--device cpu] [--size tiny|mid] [--group 4] [--steps 10]
(``--device cpu`` hides any GPU, so CI runs the same code on the CPU).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

MID = {  # denoiser overrides for --size mid: ~512 wide, 8 layers (encoders and VAEs stay tiny)
    "wan2.1-i2v": {"num_attention_heads": 8, "attention_head_dim": 64, "ffn_dim": 2048, "num_layers": 8},
    "ltx2-i2v": {"num_attention_heads": 8, "attention_head_dim": 64, "cross_attention_dim": 512,
                 "audio_num_attention_heads": 8, "audio_attention_head_dim": 32, "audio_cross_attention_dim": 256,
                 "num_layers": 8},
    "hunyuan1.5-i2v": {"num_attention_heads": 8, "attention_head_dim": 64, "rope_axes_dim": [16, 24, 24],
                       "mlp_ratio": 4.0, "num_layers": 8},
}


def save_variant(variant: str, size: str, folder: Path) -> Path:
    from wmsd_ray.models.tiny_hub import make_tiny_pipeline

    pipe = make_tiny_pipeline(variant)
    if size == "mid":
        cls = type(pipe.transformer)
        pipe.transformer = cls.from_config({**pipe.transformer.config, **MID[variant]})
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return folder


def peak_memory_gb() -> float:
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2 ** 30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def smoke(variant: str, folder: Path, group: int, steps: int) -> dict:
    import numpy as np
    import torch

    from learners.worker import Learner
    from wmsd_ray.config import load_config
    from wmsd_ray.models import build_backbone
    from wmsd_ray.models.lora import add_lora, apply_adapter, export_adapter
    from wmsd_ray.models.sampling import initial_noise, rollout
    from wmsd_ray.models.tiny_hub import COMMON, TINY_OVERRIDES
    from wmsd_ray.rollouts import TrainBatch

    cfg = load_config(None, COMMON + TINY_OVERRIDES[variant] + [
        f"model.hub={folder}", "model.dtype=bfloat16", "model.sample_steps=4", f"sampling.batch_size={group}",
        "learner.engine=deepspeed", "learner.zero_stage=2", "learner.dtype=bfloat16", "learner.workers=1",
        f"learner.batch_size={group}", f"learner.phase_batch={{distill: {group}}}", "learner.lr=1e-4"])
    sampler = build_backbone(cfg.model, cfg.world)
    add_lora(sampler, cfg.model.lora)
    image = (np.random.default_rng(0).random((cfg.world.resolution,) * 2 + (3,)) * 255).astype(np.uint8)
    cond = sampler.condition(image[None], ["The red circle slides two cells left."]).repeat(group)
    x = initial_noise(sampler, cond, torch.Generator().manual_seed(0), group_size=group)
    rollout(sampler, cond, x[:1], 1, 0.7, True, 1)  # warm up
    started = time.perf_counter()
    final, traj = rollout(sampler, cond, x, 1, 0.7, True, group)
    videos = sampler.decode(final)
    sample_s = time.perf_counter() - started
    assert traj.log_probs.dtype == torch.float32 and bool(torch.isfinite(traj.log_probs).all())
    assert videos.shape[0] == group

    learner = Learner(cfg, {"off_policy_distill": 1.0, "anchor": 0.01})
    batch = lambda u: TrainBatch(u, "demonstrator", np.repeat(image[None], group, 0), ["[red circle]: go left"] * group,  # noqa: E731
                                 ["The red circle slides two cells left."] * group, final.float().cpu().numpy(),
                                 np.ones(group, np.float32), np.full(group, -1), np.zeros(0, np.float32), seed=u)
    learner.update(batch(0))  # warm up (DeepSpeed's first step builds its buffers)
    times = [learner.update(batch(u))["step_s"] for u in range(1, steps + 1)]
    started = time.perf_counter()
    apply_adapter(sampler, export_adapter(learner.backbone))
    sync_s = time.perf_counter() - started
    return {"variant": variant, "step_ms": 1000 * float(np.mean(times)), "videos_per_s": group / sample_s,
            "sync_ms": 1000 * sync_s, "peak_gb": peak_memory_gb(), "device": str(sampler.device),
            "denoiser_m": sum(p.numel() for p in sampler.transformer.parameters()) / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("auto", "cpu"), default="auto")
    ap.add_argument("--size", choices=("tiny", "mid"), default="tiny")
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--variants", default=",".join(MID))
    args = ap.parse_args()
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported: the device helper sees no GPU
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29511")
    os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"})
    import deepspeed
    import torch

    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants.split(","):
            r = smoke(variant, save_variant(variant, args.size, Path(tmp) / variant), args.group, args.steps)
            print(f"{r['variant']:<16} on {r['device']}: denoiser {r['denoiser_m']:.1f} M params, learner step "
                  f"{r['step_ms']:.0f} ms (ZeRO-2, bf16, LoRA), sampler {r['videos_per_s']:.2f} videos/s "
                  f"(SDE, G={args.group}), adapter sync {r['sync_ms']:.1f} ms, peak memory {r['peak_gb']:.2f} GB",
                  flush=True)


if __name__ == "__main__":
    main()
