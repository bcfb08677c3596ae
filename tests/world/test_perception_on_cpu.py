import numpy as np
import pytest

from wmsd_ray.config import load_config
from wmsd_ray.world.corrupt import degrade
from wmsd_ray.world.perception import Perception
from wmsd_ray.world.render import Renderer
from wmsd_ray.world.scene import random_scene


def _accuracy(world, n, noise, blur, seed=0):
    rng = np.random.default_rng(seed)
    renderer, perception = Renderer(world), Perception(world)
    scenes = [random_scene(world, rng) for _ in range(n)]
    frames = degrade(np.stack([renderer.render(s) for s in scenes]), noise, blur, rng)
    dets = perception.detect(frames)
    right = sum(sorted((o.name, o.cell) for o in s.objects) == sorted((d.name, d.cell) for d in ds)
                for s, ds in zip(scenes, dets))
    return right / n, dets


@pytest.mark.parametrize("noise, blur", [(0.0, 0.0), (0.1, 0.0), (0.1, 1.0), (0.15, 1.3)])
def test_every_object_found_under_noise_and_blur(world, noise, blur):
    acc, _ = _accuracy(world, 400, noise, blur)
    assert acc == 1.0


def test_confidence_drops_with_degradation(world):
    _, clean = _accuracy(world, 100, 0.0, 0.0)
    _, noisy = _accuracy(world, 100, 0.15, 1.3)
    mean = lambda ds: np.mean([d.confidence for f in ds for d in f])  # noqa: E731
    assert mean(clean) > 0.9 and mean(noisy) < mean(clean)


def test_other_grid_and_resolution():
    colors = "world.colors=[red,green,blue,yellow,purple,cyan]"
    world = load_config(overrides=["world.grid=5", "world.resolution=60", colors]).world
    acc, _ = _accuracy(world, 300, 0.1, 1.0)
    assert acc == 1.0


def test_wrong_frame_shape_is_refused(world):
    with pytest.raises(ValueError, match="expected frames of shape"):
        Perception(world).detect(np.zeros((2, 16, 16, 3), np.uint8))


@pytest.mark.parametrize("gain, cast", [(0.85, (0, 0, 0)), (1.15, (0, 0, 0)), (1.0, (20, 0, 0)), (1.0, (0, 0, 30))])
def test_exposure_and_colour_cast_drift(world, gain, cast):
    """Generated frames drift in exposure and white balance; the background estimate absorbs it."""
    rng = np.random.default_rng(3)
    renderer, perception = Renderer(world), Perception(world)
    scenes = [random_scene(world, rng) for _ in range(300)]
    frames = np.stack([renderer.render(s) for s in scenes]).astype(np.float32) * gain + np.array(cast, np.float32)
    frames = degrade(np.clip(frames, 0, 255).astype(np.uint8), 0.1, 1.0, rng)
    for s, ds in zip(scenes, perception.detect(frames)):
        assert sorted((o.name, o.cell) for o in s.objects) == sorted((d.name, d.cell) for d in ds)


def test_one_pixel_misregistration(world):
    rng = np.random.default_rng(4)
    renderer, perception = Renderer(world), Perception(world)
    scenes = [random_scene(world, rng) for _ in range(300)]
    frames = degrade(np.roll(np.stack([renderer.render(s) for s in scenes]), (1, 1), axis=(1, 2)), 0.1, 1.0, rng)
    for s, ds in zip(scenes, perception.detect(frames)):
        assert sorted((o.name, o.cell) for o in s.objects) == sorted((d.name, d.cell) for d in ds)


def test_background_holds_when_grey_blobs_fill_the_frame(world):
    """Generated short-task frames fill empty cells with grey blobs: the frame median drifts to
    grey (objects then miscoloured), the cells' border rings stay background."""
    from wmsd_ray.world.render import BACKGROUND

    rng = np.random.default_rng(3)
    renderer, perception = Renderer(world), Perception(world)
    scene = random_scene(world, rng)
    frame = renderer.render(scene).astype(np.float32) / 255
    taken = {o.cell for o in scene.objects}
    for r in range(world.grid):
        for c in range(world.grid):
            if (r, c) not in taken:  # a soft grey blob inside the cell, as the model draws them
                frame[r * 8 + 1:r * 8 + 7, c * 8 + 1:c * 8 + 7] = (0.30, 0.33, 0.32)
    bg = perception.background(frame[None])[0]
    assert np.abs(bg - np.array(BACKGROUND)).max() < 0.02
    median = np.median(frame.reshape(-1, 3), axis=0)
    assert np.abs(median - np.array(BACKGROUND)).max() > 0.1  # what the frame median would have used
    found = {(d.name, d.cell) for d in perception.detect((frame * 255).round().astype(np.uint8))[0]}
    assert {(o.name, o.cell) for o in scene.objects} <= found
