"""User data loaders: unreadable images and malformed rows are counted skips, never crashes."""
import json

import numpy as np
import pytest

from wmsd_ray.datasets import load_image_folder, load_worldtasks_folder
from wmsd_ray.errors import InputError
from wmsd_ray.media import write_png


def test_image_folder_skips_and_counts_unreadable_images(tmp_path):
    write_png(tmp_path / "a.png", np.full((64, 64, 3), 200, np.uint8))
    write_png(tmp_path / "b.png", np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "c.jpg").write_bytes(b"\xff\xd8 truncated")
    (tmp_path / "notes.txt").write_text("ignored: not an image suffix")
    loaded = load_image_folder(tmp_path, size=32)
    assert [name for name, _ in loaded.items] == ["a.png", "b.png"]
    assert all(img.shape == (32, 32, 3) for _, img in loaded.items)
    assert loaded.skipped == {"unreadable_image": 1}
    with pytest.raises(InputError, match="image folder not found"):
        load_image_folder(tmp_path / "missing")


def test_worldtasks_folder_reads_json_lists_too(tmp_path):
    write_png(tmp_path / "s.png", np.zeros((32, 32, 3), np.uint8))
    rows = [{"image": "s.png", "agent": "red circle", "task": "[red circle]: go to the centre",
             "solution": "The red circle slides one cell up.", "held_out": True, "family": "centre"}]
    (tmp_path / "tasks.json").write_text(json.dumps(rows))
    loaded = load_worldtasks_folder(tmp_path)
    assert len(loaded.items) == 1 and loaded.items[0].held_out is True and loaded.items[0].family == "centre"
    (tmp_path / "tasks.json").write_text("{broken")
    with pytest.raises(InputError, match="is not JSON"):
        load_worldtasks_folder(tmp_path)
