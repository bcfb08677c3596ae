"""Training engines behind one small interface: plain DDP or DeepSpeed (ZeRO stage in config).

Both wrap only the forward pass (``backbone.forward_module``) so the rest of the code keeps
using the raw diffusers module (adapter switching, export). On CPU they run over gloo; on
GPU the same code uses NCCL. bf16 runs as autocast over fp32 master weights in both.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import torch
import torch.distributed as dist

from wmsd_ray.config import LearnerConfig
from wmsd_ray.device import device_ids


class Engine:
    name = "base"

    def __init__(self, backbone, params: list[torch.nn.Parameter], cfg: LearnerConfig, device: torch.device):
        self.backbone, self.params, self.cfg, self.device = backbone, params, cfg, device

    def autocast(self):
        if self.cfg.dtype == "bfloat16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def set_lr(self, lr: float) -> float:
        """Set the rate of the next step; returns what the optimizer now holds."""
        for group in self.opt.param_groups:
            group["lr"] = lr
        return float(self.opt.param_groups[0]["lr"])

    def world(self) -> int:
        return dist.get_world_size() if dist.is_initialized() else 1

    def all_finite(self, loss: torch.Tensor) -> bool:
        """Every rank agrees whether to apply this step (a NaN on one rank skips it on all)."""
        flag = torch.tensor([1.0 if torch.isfinite(loss).item() else 0.0], device=self.device)
        if self.world() > 1:
            dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item() > 0)


class DDPEngine(Engine):
    name = "ddp"

    def __init__(self, backbone, params, cfg, device):
        super().__init__(backbone, params, cfg, device)
        self.opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if self.world() > 1:
            from torch.nn.parallel import DistributedDataParallel

            # Two experts: each step runs one of them, so the other's parameters are unused.
            backbone.forward_module = DistributedDataParallel(
                backbone.trainable_module(), device_ids=device_ids(device),
                find_unused_parameters=backbone.transformer_2 is not None)

    def step(self, loss: torch.Tensor) -> float:
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.opt.step()
        return float(norm)

    def skip(self) -> None:
        self.opt.zero_grad(set_to_none=True)

    def save(self, directory: Path, rank: int) -> None:
        if rank == 0:
            torch.save(self.opt.state_dict(), directory / "optimizer.pt")

    def load(self, directory: Path) -> None:
        self.opt.load_state_dict(torch.load(directory / "optimizer.pt", weights_only=False))


class DeepSpeedEngine(Engine):
    name = "deepspeed"

    def __init__(self, backbone, params, cfg, device):
        super().__init__(backbone, params, cfg, device)
        import deepspeed

        world = self.world()
        ds_config = {
            "train_batch_size": cfg.batch_size - cfg.batch_size % world,
            "train_micro_batch_size_per_gpu": cfg.batch_size // world,
            "gradient_accumulation_steps": 1,
            "gradient_clipping": cfg.grad_clip,
            "zero_optimization": {"stage": cfg.zero_stage},
            "steps_per_print": 10 ** 9,
            "wall_clock_breakdown": False,
        }
        # A torch optimizer: DeepSpeed's own AdamW would compile fused_adam (~76 s on CPU).
        opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.engine, self.opt, _, _ = deepspeed.initialize(model=backbone.trainable_module(), optimizer=opt, config=ds_config)
        backbone.forward_module = self.engine

    def step(self, loss: torch.Tensor) -> float:
        self.engine.backward(loss)
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm) if norm is not None else 0.0

    def skip(self) -> None:
        self.engine.zero_grad()

    def save(self, directory: Path, rank: int) -> None:
        self.engine.save_checkpoint(str(directory / "deepspeed"), tag="state")

    def load(self, directory: Path) -> None:
        self.engine.load_checkpoint(str(directory / "deepspeed"), tag="state", load_module_strict=False)


ENGINES = {"ddp": DDPEngine, "deepspeed": DeepSpeedEngine}


def make_engine(backbone, params, cfg: LearnerConfig, device: torch.device) -> Engine:
    return ENGINES[cfg.engine](backbone, params, cfg, device)
