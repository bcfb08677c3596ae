import numpy as np
import pytest

from wmsd_ray.errors import InputError
from wmsd_ray.media import read_image, read_video, write_gif, write_mp4, write_png
from wmsd_ray.records import TaskSpec, read_parquet, write_parquet


def _spec(i: int) -> TaskSpec:
    img = np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    return TaskSpec(f"t{i}", f"s{i}", img, "red circle", "[red circle]: go to the centre",
                    "The red circle slides one cell down, and stops. Nothing else moves.", "centre", i % 4, i % 2 == 0)


def test_taskspec_parquet_round_trip(tmp_path):
    specs = [_spec(i) for i in range(5)]
    write_parquet(tmp_path / "t.parquet", specs)
    back = read_parquet(TaskSpec, tmp_path / "t.parquet")
    for a, b in zip(specs, back):
        assert np.array_equal(a.image, b.image) and a.image.dtype == b.image.dtype
        assert (a.task_id, a.task, a.solution, a.phrasing, a.held_out) == (b.task_id, b.task, b.solution, b.phrasing, b.held_out)
    assert not list(tmp_path.glob("*.tmp"))


def test_empty_record_file(tmp_path):
    write_parquet(tmp_path / "e.parquet", [], TaskSpec)
    assert read_parquet(TaskSpec, tmp_path / "e.parquet") == []


def test_unreadable_record_file(tmp_path):
    p = tmp_path / "x.parquet"
    p.write_text("not parquet")
    with pytest.raises(InputError, match="not a readable parquet"):
        read_parquet(TaskSpec, p)


def test_gif_and_mp4_export(tmp_path, renderer, world):
    video = renderer.render_path(*_moving(world))
    write_gif(tmp_path / "v.gif", video, scale=8)
    back = read_video(tmp_path / "v.gif")
    assert back.shape == (world.frames, 256, 256, 3)
    assert np.array_equal(back[:, ::8, ::8], video)  # GIF of our palette is lossless here
    write_mp4(tmp_path / "v.mp4", video, scale=8)
    mp4 = read_video(tmp_path / "v.mp4")
    assert mp4.shape[0] == world.frames and mp4.shape[1:3] == (256, 256)


def _moving(world):
    from wmsd_ray.world.scene import Scene, WorldObject

    s = Scene(4, (WorldObject("red", "circle", 0, 0), WorldObject("blue", "square", 3, 3), WorldObject("green", "square", 2, 2)))
    return s, "red circle", [(0, 0), (0, 1), (0, 2), (0, 3)]


def test_read_image_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a readable image"):
        read_image(tmp_path / "notes.txt", 32)
    write_png(tmp_path / "big.png", np.zeros((48, 48, 3), np.uint8))
    with pytest.raises(InputError, match="48x48 px, but world.resolution is 32x32"):
        read_image(tmp_path / "big.png", 32)
    with pytest.raises(InputError, match="not found"):
        read_image(tmp_path / "missing.png", 32)
