from collections import Counter

import numpy as np

from wmsd_ray.config import load_config
from wmsd_ray.records import BenchmarkTask, read_metadata, read_parquet
from wmsd_ray.world.benchmark import BENCHMARK_PATH, benchmark_scene_keys, load_benchmark, make_benchmark, world_signature
from wmsd_ray.world.captions import simulate_caption
from wmsd_ray.world.corpus import iter_corpus
from wmsd_ray.world.scene import Scene
from wmsd_ray.world.tasks import FAMILY_NAMES, parse_task


def test_committed_benchmark_is_what_the_seed_makes(world):
    committed = read_parquet(BenchmarkTask, BENCHMARK_PATH)
    fresh = make_benchmark(world)
    assert len(committed) == len(fresh) == 200
    for a, b in zip(committed, fresh):
        fields = ("task_id", "task", "solution", "scene_json", "held_out")
        assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
        assert np.array_equal(a.image, b.image)
    assert read_metadata(BENCHMARK_PATH)["world"] == world_signature(world)


def test_benchmark_is_balanced_and_marks_held_out(world):
    tasks = load_benchmark(world)
    per_family = Counter(t.family for t in tasks)
    assert set(per_family) == set(FAMILY_NAMES) and min(per_family.values()) >= 25
    held = [t for t in tasks if t.held_out]
    assert all(t.family == "half" or t.phrasing == 3 for t in held)
    assert 50 <= len(held) <= 100 and any(t.family == "half" for t in held) and any(t.family != "half" for t in held)


def test_benchmark_image_is_the_scene_and_the_solution_works(world, renderer, judge):
    for t in load_benchmark(world):
        scene = Scene.from_json(t.scene_json)
        assert np.array_equal(renderer.render(scene), t.image)
        agent, path = simulate_caption(scene, t.solution, world.frames)
        assert agent == parse_task(t.task).agent == t.agent


def test_training_streams_never_use_benchmark_scenes(world):
    keys = benchmark_scene_keys(world)
    assert len(keys) >= 100
    stream = iter_corpus(world, seed=0, exclude_keys=keys)
    assert all(Scene.from_json(next(stream).scene_json).key() not in keys for _ in range(2000))


def test_other_world_gets_a_benchmark_made_for_it():
    world = load_config(overrides=["world.grid=5", "world.resolution=40"]).world
    tasks = load_benchmark(world)
    assert len(tasks) == 200 and tasks[0].image.shape == (40, 40, 3)
