"""The first phase: training scenes (never benchmark layouts) -> proposer actors -> TaskSpecs."""
from __future__ import annotations

from collections import deque

import numpy as np

from actors.pool import Call
from wmsd_ray.records import TaskSpec, write_parquet
from wmsd_ray.world.benchmark import benchmark_scene_keys
from wmsd_ray.world.render import Renderer
from wmsd_ray.world.scene import random_scene

from .stage import Controller


class ProposeStage:
    """``ProposeStage(driver).run()`` fills ``driver.tasks`` and writes ``tasks.parquet``."""

    def __init__(self, d: Controller):
        self.d, self.cfg = d, d.cfg

    def scene_images(self) -> list[np.ndarray]:
        """A cluster's unlabeled images (unreadable files counted and skipped), or rendered scenes."""
        world, data = self.cfg.world, self.cfg.data
        if data.scenes_dir:
            from wmsd_ray.datasets import load_image_folder

            loaded = load_image_folder(data.scenes_dir, world.resolution)
            self.d.state.counters.update({f"scenes_skipped/{k}": v for k, v in loaded.skipped.items()})
            return [img for _, img in loaded.items][: data.train_scenes]
        scene_rng = np.random.default_rng([self.cfg.seed, data.scene_seed])
        renderer, exclude = Renderer(world), benchmark_scene_keys(world)
        return [renderer.render(random_scene(world, scene_rng, exclude)) for _ in range(data.train_scenes)]

    def run(self) -> None:
        d = self.d
        images = self.scene_images()
        proposers = d.pool("proposer")
        pending = deque(range(len(images)))
        results: dict[int, list[TaskSpec]] = {}
        while pending or proposers.in_flight:
            while pending and proposers.has_capacity():
                i = pending.popleft()
                proposers.submit(Call("propose", (images[i], f"train-{i:04d}", self.cfg.seed * 7919 + i), tag=i))
            for call, _, proposal in proposers.done(timeout=0.5):
                results[call.tag] = proposal.specs
                d.state.counters.update({f"proposer_rejected/{k}": v for k, v in proposal.rejected.items()})
        d.tasks = [s for i in sorted(results) for s in results[i]]
        if not d.tasks:
            raise RuntimeError("the proposer produced no tasks from the training scenes")
        write_parquet(d.run_dir / "tasks.parquet", d.tasks, TaskSpec)
        d.release("proposer")
        d.metrics.log({"event": "proposed", "scenes": len(images), "tasks": len(d.tasks)})
        print(f"propose: {len(d.tasks)} task/solution pairs from {len(images)} training scenes", flush=True)
