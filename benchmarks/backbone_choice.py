"""Which diffusers backbone makes the best embedded Demonstrator in a fixed CPU budget?

Trains each tiny backbone (same width, depth, patch and text encoder) on the same caption
corpus for the same wall-clock budget, then prints steps done, seconds per step and the
x0 loss on a fixed held-out batch at fixed noise levels (lower is better).
Usage: python benchmarks/backbone_choice.py [--seconds 90]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from wmsd_ray.config import load_config
from wmsd_ray.models import build_backbone
from wmsd_ray.models.flow import sample_train_sigmas
from wmsd_ray.pretrain import corpus_batch, lr_at
from wmsd_ray.world.benchmark import benchmark_scene_keys


def held_out_loss(bb, frames, captions) -> float:
    bb.eval()
    with torch.no_grad():
        x0, cond = bb.encode_video(frames), bb.condition(frames[:, 0], captions)
        losses = []
        for s in (0.3, 0.6, 0.9):
            g = torch.Generator().manual_seed(int(s * 100))
            sigma = torch.full((len(captions),), s)
            losses.append(bb.flow_loss(x0, cond, sigma, torch.randn(x0.shape, generator=g)).item())
    bb.train()
    return float(np.mean(losses))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=90.0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg = load_config()
    exclude = benchmark_scene_keys(cfg.world)
    cfg.pretrain.batch_size = 64
    val_frames, val_caps = corpus_batch(cfg, 10**6, exclude)
    cfg.pretrain.batch_size = 16
    text = None
    print(f"{'backbone':<10} {'params(M)':>9} {'steps':>6} {'s/step':>7} {'held-out x0 loss':>17}")
    for name in ("wan", "ltx2", "hunyuan15"):
        cfg.model.backbone = name
        torch.manual_seed(0)
        bb = build_backbone(cfg.model, cfg.world, text)
        text = bb.text
        opt = torch.optim.AdamW(bb.parameters(), lr=cfg.pretrain.lr, weight_decay=0.01)
        bb.train()
        step, start = 0, None
        while start is None or time.time() - start < args.seconds:
            if step == 3:
                start = time.time()  # skip warm-up steps
                timed_from = step
            frames, caps = corpus_batch(cfg, step, exclude)
            g = torch.Generator().manual_seed(step)
            x0, cond = bb.encode_video(frames), bb.condition(frames[:, 0], caps)
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg.pretrain)
            loss = bb.flow_loss(x0, cond, sample_train_sigmas(len(caps), 5.0, g), torch.randn(x0.shape, generator=g))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(bb.parameters(), 1.0)
            opt.step()
            step += 1
        sps = (time.time() - start) / (step - timed_from)
        params = sum(p.numel() for p in bb.parameters()) / 1e6
        print(f"{name:<10} {params:>9.2f} {step:>6} {sps:>7.3f} {held_out_loss(bb, val_frames, val_caps):>17.4f}", flush=True)


if __name__ == "__main__":
    main()
