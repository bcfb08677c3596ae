"""GPU memory per role for a cluster preset, and how many 80 GB GPUs each role needs.

The denoiser is built at real size on the meta device from ``configs/architectures.json``
(sources there), so its parameter count is exact; the rest is a stated estimate:
- weights: parameters x 2 bytes (bf16); autoencoders in float32; encoders bf16 unless offloaded;
- LoRA: r x (in + out) per targeted Linear, float32, plus its gradient and two Adam moments;
- activations (an estimate): a transformer layer keeps about 34 x tokens x hidden bytes per
  sample for its backward pass with fused attention (Korthikanti et al. 2022, no score matrix);
  with gradient checkpointing only each layer's input (2 x tokens x hidden bytes) plus one
  layer's 34 x ... are held. Sampling holds one layer's working set, ~12 x tokens x hidden bytes
  per row sampled together (``sampling.batch_size`` rows; x2 with classifier-free guidance),
  plus the SDE trajectory of the whole group kept for Flow-GRPO;
- ZeRO-2 shards gradients and optimizer moments over the learner workers; ZeRO-3 the frozen
  weights too;
- VLM judges/proposers: parameters x 2 bytes, with vLLM taking ``gpu_memory_utilization`` of
  each GPU in all (weights + KV cache).
Usage: python benchmarks/memory_plan.py --config configs/ltx2_paper.yaml [--gpu-gb 80]
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from wmsd_ray.config import Config, load_config
from wmsd_ray.device import META

ROOT = Path(__file__).resolve().parents[1]
ARCH = json.loads((ROOT / "configs" / "architectures.json").read_text())
GB = 1024 ** 3


def denoiser(arch: dict) -> torch.nn.Module:
    import diffusers

    cls = getattr(diffusers, arch["class"])
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in arch["kwargs"].items()}
    with META:
        return cls(**kwargs)


def lora_params(model: torch.nn.Module, cfg: Config) -> int:
    targets, r = cfg.model.lora.targets, cfg.model.lora.rank
    return sum(r * (m.in_features + m.out_features) for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and any(name.endswith(t) for t in targets))


def shape(model: torch.nn.Module, arch: dict, cfg: Config) -> tuple[int, int, int]:
    """(tokens per sample, hidden width, layers) at the preset's resolution and frames."""
    c = model.config
    hidden = c.num_attention_heads * c.attention_head_dim
    vt, vs, _ = arch["vae"]
    pt, ph, pw = arch["patch"]
    frames = (cfg.world.frames - 1) // vt + 1
    side = cfg.world.resolution // vs
    video = (frames // pt) * (side // ph) * (side // pw)
    audio = int(arch["audio_tokens_per_s"] * cfg.world.frames / cfg.model.ltx2.frame_rate)
    return video + audio + arch["max_text_tokens"], hidden, c.num_layers


def plan(cfg: Config, gpu_gb: float) -> dict:
    """GB per GPU of each role, GPUs per actor, and the learner's largest micro-batch and workers."""
    arch = ARCH[cfg.model.backbone]
    model = denoiser(arch)
    n = sum(p.numel() for p in model.parameters())
    tokens, hidden, layers = shape(model, arch, cfg)
    experts, usable = arch["experts"], gpu_gb * 0.9
    weights = experts * n * 2 / GB
    encoders = arch["text_encoder"]["params_b"] * 1e9 * 2 / GB
    vae = arch["vae_params_b"] * 1e9 * 4 / GB
    lora = experts * lora_params(model, cfg)
    guided = 2 if cfg.model.guidance.active else 1
    group = cfg.sampling.group_size
    chunk = min(group, cfg.sampling.batch_size)  # rows sampled together (actors/models.py)
    state = tokens * model.config.out_channels * 4 / GB  # rough float32 latent per sample
    on_gpu = 0.0 if cfg.model.offload_encoders else encoders
    rollout = weights + on_gpu + vae + chunk * guided * 12 * tokens * hidden / GB
    gb = {"demonstrator": rollout,
          "executor": rollout + lora * 4 / GB + group * (cfg.model.sample_steps + 1) * state}
    workers = max(1, cfg.learner.workers)
    frozen = weights / workers if cfg.learner.zero_stage == 3 else weights  # ZeRO-3 shards parameters too
    base = frozen + on_gpu + vae + lora * 4 / GB + lora * (4 + 8) / GB / workers  # + sharded grads, moments
    per_sample = {"no checkpointing": layers * 34 * tokens * hidden / GB,
                  "gradient checkpointing": (layers * 2 + 34) * tokens * hidden / GB}
    mode = "gradient checkpointing" if cfg.model.gradient_checkpointing else "no checkpointing"
    micro = math.ceil(cfg.learner.batch_size / workers)
    learner = {name: {"gb": base + micro * ps, "max_micro_batch": max(0, int((usable - base) / ps))}
               for name, ps in per_sample.items()}
    fits = learner[mode]["max_micro_batch"]
    need_workers = math.ceil(cfg.learner.batch_size / fits) if fits else None
    for role, vc in (("judge", cfg.judge.vlm), ("proposer", cfg.proposer.vlm)):
        size = ARCH["vlms"].get(vc.model)
        if size is not None:
            gb[f"{role} ({vc.model})"] = size * 1e9 * 2 / GB / vc.gpu_memory_utilization
    return {"backbone": cfg.model.backbone, "params": n, "experts": experts, "published_b": arch["published_b"],
            "tokens": tokens, "hidden": hidden, "layers": layers, "lora_params": lora, "micro_batch": micro,
            "gb": gb, "gpus": {k: math.ceil(v / usable) for k, v in gb.items()}, "learner": learner,
            "learner_mode": mode, "learner_workers_needed": need_workers}


def check_preset(cfg: Config, p: dict) -> list[str]:
    """Where the preset's pools disagree with the plan (empty when they follow from it)."""
    problems = []
    for role, pool in (("demonstrator", cfg.actors.demonstrator), ("executor", cfg.actors.executor)):
        if pool.num_gpus < p["gpus"][role]:
            problems.append(f"actors.{role}.num_gpus={pool.num_gpus} < {p['gpus'][role]} needed")
    for role, pool, vc in (("judge", cfg.actors.judge, cfg.judge.vlm), ("proposer", cfg.actors.proposer, cfg.proposer.vlm)):
        need = next((v for k, v in p["gpus"].items() if k.startswith(role)), None)
        if need and (pool.num_gpus < need or vc.tensor_parallel < need):
            problems.append(f"{role}: {need} GPUs needed, actors.{role}.num_gpus={pool.num_gpus}, "
                            f"{role}.vlm.tensor_parallel={vc.tensor_parallel}")
    need = p["learner_workers_needed"]
    if need is None or cfg.learner.workers < need:
        problems.append(f"learner.workers={cfg.learner.workers} < {need} needed at batch {cfg.learner.batch_size} "
                        f"({p['learner_mode']})")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--gpu-gb", type=float, default=80.0)
    args = ap.parse_args()
    cfg = load_config(args.config)
    p = plan(cfg, args.gpu_gb)
    off = 100 * (p["params"] / 1e9 - p["published_b"]) / p["published_b"]
    print(f"{args.config}: {p['backbone']} denoiser {p['params']:,} parameters ({p['params'] / 1e9:.2f} B"
          f" per expert x {p['experts']}; published {p['published_b']} B, {off:+.1f}%), "
          f"{p['tokens']:,} tokens x {p['hidden']} wide x {p['layers']} layers per sample, "
          f"LoRA {p['lora_params'] / 1e6:.1f} M parameters, learner micro-batch {p['micro_batch']}")
    print(f"{'role':<50} {'GB per GPU (estimate)':>22} {f'GPUs of {args.gpu_gb:.0f} GB':>14}")
    for role, gb in p["gb"].items():
        print(f"{role:<50} {gb:>22.1f} {p['gpus'][role]:>14}")
    for mode, row in p["learner"].items():
        label = f"learner worker, {mode}, micro-batch {p['micro_batch']}"
        print(f"{label:<50} {row['gb']:>22.1f}   largest micro-batch per GPU: {row['max_micro_batch']}")
    print(f"learner ({p['learner_mode']}): {p['learner_workers_needed']} workers for batch {cfg.learner.batch_size}")
    problems = check_preset(cfg, p)
    print("the preset's pools follow from this plan" if not problems else "the preset disagrees: " + "; ".join(problems))


if __name__ == "__main__":
    main()
