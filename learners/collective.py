"""Adapter weight sync over a collective channel: NCCL between GPUs, gloo on the CPU.

The object-store path (``learners/weights.py``) copies each adapter version GPU -> host ->
object store -> host -> GPU. With ``learner.weight_sync=collective`` (the default wherever the
learner holds a GPU) rank 0 of the learner sends it tensor to tensor instead. Each Executor actor
joins with its own two-rank process group (rank 0: the learner's sender, rank 1: the actor), so
an actor that dies or is replaced breaks only its own pair, and a new one joins at any time and is
sent the newest version first. The sender is a thread beside training (a send never delays an
update); it announces a version in the weight store once sent, and the store still carries the
learner's metrics and the sender's address. Both ends
flatten the adapter in the same order (sorted parameter names), checked by a layout digest.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from datetime import timedelta

import numpy as np
import ray
import torch
import torch.distributed as dist

from wmsd_ray.device import CPU, collective_backend
from wmsd_ray.errors import ConfigError
from wmsd_ray.models.lora import lora_named

log = logging.getLogger(__name__)
JOIN_POLL_S = 0.2


def weight_transport(cfg) -> str:
    """``object_store`` or ``collective``: ``auto`` picks collective when the learner holds GPUs."""
    mode = cfg.learner.weight_sync
    if mode == "auto":
        return "collective" if cfg.learner.gpus_per_worker > 0 else "object_store"
    return mode


def layout_digest(backbone) -> str:
    """Names, shapes and order of the flat adapter: sender and receiver must agree on it."""
    h = hashlib.sha256()
    for name, p in sorted(lora_named(backbone).items()):
        h.update(f"{name}{tuple(p.shape)};".encode())
    return h.hexdigest()[:16]


@torch.no_grad()
def flatten(backbone) -> torch.Tensor:
    """The adapter as one float32 vector on the model's device (sorted parameter names)."""
    return torch.cat([p.detach().reshape(-1).float() for _, p in sorted(lora_named(backbone).items())])


@torch.no_grad()
def unflatten_into(backbone, flat: torch.Tensor) -> None:
    params = [p for _, p in sorted(lora_named(backbone).items())]
    total = sum(p.numel() for p in params)
    if flat.numel() != total:
        raise ValueError(f"adapter of {flat.numel()} values received, this model's has {total}")
    offset = 0
    for p in params:
        p.copy_(flat[offset:offset + p.numel()].view_as(p))
        offset += p.numel()


def _pair_group(store, rank: int, backend: str, timeout_s: float):
    """A two-rank process group outside the default one (the learner's own group is untouched)."""
    timeout = timedelta(seconds=timeout_s)
    if backend == "nccl":  # (the CPU build of torch has no ProcessGroupNCCL; only GPU workers get here)
        options = dist.ProcessGroupNCCL.Options()
        options._timeout = timeout  # as torch's own process-group helper sets it
        return dist.ProcessGroupNCCL(store, rank, 2, options)
    return dist.ProcessGroupGloo(store, rank, 2, timeout)


class _Pair:
    def __init__(self, group):
        self.group, self.sent = group, -1


class AdapterSender:
    """Learner rank 0's end: publishes its address, connects each joining actor, sends the newest
    version to every pair behind it. Failed pairs are dropped and counted."""

    def __init__(self, backbone, store, timeout_s: float):
        self.store, self.timeout_s = store, timeout_s
        self.device = flatten(backbone).device
        self.backend = collective_backend(self.device)
        host = ray.util.get_node_ip_address()
        self.tcp = dist.TCPStore(host, 0, is_master=True, wait_for_workers=False, timeout=timedelta(seconds=timeout_s))
        self.info = {"id": uuid.uuid4().hex[:12], "host": host, "port": self.tcp.port, "backend": self.backend,
                     "layout": layout_digest(backbone)}
        self.pairs: dict[str, _Pair] = {}
        self.newest: tuple[int, torch.Tensor] | None = None
        self.send_s: list[float] = []
        self.dropped, self.announced = 0, -1
        self.wake = threading.Condition()
        self.stopping = False
        ray.get(store.set_sender.remote(self.info))
        self.thread = threading.Thread(target=self._loop, daemon=True, name="adapter-sender")
        self.thread.start()

    def offer(self, version: int, backbone) -> None:
        """Called after each applied update: snapshot the adapter (on its device for NCCL)."""
        flat = flatten(backbone).clone()
        with self.wake:
            self.newest = (version, flat if self.backend == "nccl" else flat.to(CPU))
            self.wake.notify()

    def _loop(self) -> None:
        last_poll = 0.0
        while not self.stopping:
            if time.monotonic() - last_poll > JOIN_POLL_S:
                last_poll = time.monotonic()
                for actor_id in ray.get(self.store.take_joins.remote()):
                    threading.Thread(target=self._connect, args=(actor_id,), daemon=True).start()
            with self.wake:
                newest = self.newest
            for actor_id, pair in list(self.pairs.items()):
                if newest is not None and pair.sent < newest[0]:
                    self._send(actor_id, pair, *newest)
            if newest is not None and newest[0] > self.announced:
                # Announced once sent: an actor told of a version finds it in its receiver already,
                # rather than waiting for this thread to be scheduled on the learner's busy core.
                self.announced = newest[0]
                self.store.announce.remote(self.announced)
            with self.wake:
                self.wake.wait_for(lambda: self.stopping or self._behind(), timeout=JOIN_POLL_S)

    def _behind(self) -> bool:
        """A version not yet sent to some pair, or not yet announced."""
        if self.newest is None:
            return False
        version = self.newest[0]
        return version > self.announced or any(p.sent < version for p in list(self.pairs.values()))

    def _connect(self, actor_id: str) -> None:
        try:
            group = _pair_group(dist.PrefixStore(f"pair/{actor_id}/", self.tcp), 0, self.backend, self.timeout_s)
        except Exception as e:  # the actor died before its end connected
            self.dropped += 1
            log.warning("adapter sync: actor %s never connected (%s); dropped", actor_id, e)
            return
        self.pairs[actor_id] = _Pair(group)
        with self.wake:
            self.wake.notify()

    def _send(self, actor_id: str, pair: _Pair, version: int, flat: torch.Tensor) -> None:
        started = time.perf_counter()
        header = torch.tensor([version, flat.numel()], dtype=torch.int64, device=flat.device)
        try:
            pair.group.send([header], 1, 0).wait()
            pair.group.send([flat], 1, 1).wait()
        except Exception as e:  # the actor died or was replaced: only its pair breaks
            del self.pairs[actor_id]
            self.dropped += 1
            log.warning("adapter sync: send to %s failed (%s); pair dropped", actor_id, e)
            return
        pair.sent = version
        self.send_s.append(time.perf_counter() - started)

    def close(self) -> dict:
        """Stop sending; the figures of this learner group's syncs."""
        self.stopping = True
        with self.wake:
            self.wake.notify()
        self.thread.join(timeout=self.timeout_s)
        ray.get(self.store.clear_sender.remote(self.info["id"]))
        self.pairs.clear()
        s = self.send_s
        return {"transport": "collective", "backend": self.backend, "collective_sends": len(s),
                "collective_send_s": float(np.mean(s)) if s else 0.0, "collective_dropped": self.dropped}


class AdapterReceiver:
    """An Executor actor's end: a thread that joins one sender and keeps the newest version sent."""

    def __init__(self, info: dict, store, device: torch.device, layout: str, timeout_s: float):
        if info["layout"] != layout:
            raise ConfigError(f"adapter layout {layout} differs from the learner's {info['layout']}: "
                              "the Executor and the learner must build the same LoRA (model.lora)")
        if info["backend"] == "nccl" and collective_backend(device) != "nccl":
            raise ConfigError("the learner sends adapters over NCCL but this Executor has no GPU; "
                              "set learner.weight_sync=object_store or give actors.executor GPUs")
        self.info, self.store, self.timeout_s = info, store, timeout_s
        self.device = device if info["backend"] == "nccl" else CPU
        self.version, self.flat, self.error = -1, None, None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="adapter-receiver")
        self.thread.start()

    @property
    def broken(self) -> bool:
        return self.error is not None

    def _loop(self) -> None:
        actor_id = uuid.uuid4().hex[:12]
        try:
            tcp = dist.TCPStore(self.info["host"], self.info["port"], is_master=False,
                                timeout=timedelta(seconds=self.timeout_s))
            ray.get(self.store.join.remote(actor_id))
            group = _pair_group(dist.PrefixStore(f"pair/{actor_id}/", tcp), 1, self.info["backend"], self.timeout_s)
            while True:
                header = torch.empty(2, dtype=torch.int64, device=self.device)
                group.recv([header], 0, 0).wait()
                version, numel = (int(x) for x in header.tolist())
                flat = torch.empty(numel, dtype=torch.float32, device=self.device)
                group.recv([flat], 0, 1).wait()
                with self.lock:
                    self.version, self.flat = version, flat
        except Exception as e:  # the sender closed (phase over, learner lost) or never answered
            self.error = e

    def newest(self) -> tuple[int, torch.Tensor | None]:
        with self.lock:
            return self.version, self.flat


class WeightSyncError(RuntimeError):
    """An announced adapter version did not arrive in time: the call fails and the pool retries it."""


class CollectiveClient:
    """What an Executor actor asks between groups: the newest version, over its pair with the sender.

    A receiver whose sender closed (the phase ended, the learner group was lost) is replaced by one
    joined to the sender the store names now."""

    def __init__(self, store, backbone, timeout_s: float):
        self.store, self.timeout_s = store, timeout_s
        self.device = flatten(backbone).device
        self.layout = layout_digest(backbone)
        self.receiver: AdapterReceiver | None = None
        self.joins = 0

    def pull(self, have: int) -> tuple[int, torch.Tensor] | None:
        """(version, flat adapter) if the store announced one newer than ``have``, else None."""
        want = ray.get(self.store.newest_version.remote())
        if want <= have:
            return None
        started = time.monotonic()
        checked = started
        while True:
            rx = self.receiver
            if rx is not None and not rx.broken:
                version, flat = rx.newest()
                if version >= want:
                    return version, flat
            if rx is None or rx.broken or time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                self._attach()
            if time.monotonic() - started > self.timeout_s:
                raise WeightSyncError(f"adapter v{want} was announced but not received within {self.timeout_s:.0f} s "
                                      f"(sender {self.receiver.info if self.receiver else None})")
            time.sleep(0.005)

    def _attach(self) -> None:
        """Join the sender the store names, unless our receiver is already its live partner."""
        info = ray.get(self.store.sender.remote())
        rx = self.receiver
        if info is None or (rx is not None and not rx.broken and rx.info["id"] == info["id"]):
            return
        self.receiver = AdapterReceiver(info, self.store, self.device, self.layout, self.timeout_s)
        self.joins += 1
