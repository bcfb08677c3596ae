"""One device rule, in one place: every model goes where Ray put this process.

Ray sets ``CUDA_VISIBLE_DEVICES`` to the GPUs it assigned an actor or a learner worker, and a
process given none sees none; so CUDA when a GPU is visible, the CPU otherwise. Denoisers take
the configured dtype (``model.dtype``: bf16 on GPU clusters); autoencoders stay in float32; the
frozen text and image encoders go to the same device, or stay on the CPU when
``model.offload_encoders`` is set (their outputs then move). The stochastic parts (initial and
SDE noise, log-probs, advantages) are float32 everywhere. Nothing outside this module names a
device: the rest of the code follows the device its tensors and modules already have (a test
checks).
"""
from __future__ import annotations

import numpy as np
import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
CPU = torch.device("cpu")
META = torch.device("meta")  # modules built here hold no memory (shapes only)


def assigned_device() -> torch.device:
    """CUDA when this process can see a GPU, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return CPU


def resolve(name: str) -> torch.device:
    """A configured device name: ``auto`` (the assigned one), or an explicit ``cpu`` / ``cuda:N``."""
    return assigned_device() if name == "auto" else torch.device(name)


def device_ids(device: torch.device) -> list[int] | None:
    """What DDP wants: the GPU index on CUDA, nothing on the CPU."""
    return [device.index] if device.type == "cuda" else None


def place(backbone, device: torch.device, dtype: str = "float32", offload_encoders: bool = False) -> None:
    """Move a backbone's modules: denoisers to (device, dtype), the VAE to device in float32,
    encoders to device (or kept on the CPU)."""
    for module in backbone.experts.values():
        module.to(device=device, dtype=DTYPES[dtype])
    vae = getattr(backbone.codec, "vae", None)
    if vae is not None:
        vae.to(device=device, dtype=torch.float32)
    for module in backbone.encoders():
        module.to(CPU if offload_encoders else device)


def from_numpy(array, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A record's array on a compute device (float32 unless asked otherwise)."""
    return torch.from_numpy(np.asarray(array)).to(device=device, dtype=dtype)


def to_numpy(tensor: torch.Tensor, dtype: torch.dtype = torch.float32) -> np.ndarray:
    """A tensor back into a record: numpy on the host (float32 unless asked otherwise)."""
    return tensor.detach().to(device=CPU, dtype=dtype).numpy()


def collective_backend(device: torch.device) -> str:
    """The torch.distributed backend for tensors on ``device``: NCCL between GPUs, gloo otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"
