"""The DreamGen Bench protocol: file names, frame sampling, and scoring a folder of videos."""
import json

import numpy as np
import pytest

from wmsd_ray.dreamgen import (
    WorldDreamGenAnswerer,
    evaluate_folder,
    frame_indices,
    if_prompt,
    parse_video_name,
    protocol_frames,
    protocol_size,
)
from wmsd_ray.media import write_mp4
from wmsd_ray.world.benchmark import load_benchmark
from wmsd_ray.world.captions import simulate_caption
from wmsd_ray.world.scene import Scene


def test_video_names():
    assert parse_video_name("12_Pick_up_the_red_cup.mp4") == (12, "Pick up the red cup")
    assert parse_video_name("3_[red_circle]:_go_to_the_centre.mp4") == (3, "[red circle]: go to the centre")
    for bad in ("pick_up.mp4", "12_.mp4", "12_pick.avi", "x12_pick.mp4"):
        assert parse_video_name(bad) is None


def upstream_indices(total: int, n: int = 49) -> list[int]:
    """dreamgenbench/utils.py's rule: arange padded with the last frame, else a floored linspace."""
    if total < n:
        return list(range(total)) + [total - 1] * (n - total)
    return [int(x) for x in np.linspace(0, total - 1, n, dtype=int)]


@pytest.mark.parametrize("total", [1, 9, 17, 48, 49, 50, 93, 121, 200])
def test_frame_indices_equal_upstreams(total):
    assert frame_indices(total).tolist() == upstream_indices(total)


def test_frame_indices_floor_and_pad_where_rounding_would_not():
    assert frame_indices(50).tolist() == list(range(48)) + [49]  # round() would give 1, 2, ... shifted up
    assert frame_indices(9).tolist() == list(range(9)) + [8] * 40  # the last frame pads at the end


def test_frame_sizes_truncate_and_the_zero_shot_prompt_differs():
    assert protocol_size(200, 300) == (60, 90) and protocol_size(33, 47) == (9, 14)  # round() gives (10, 14)
    video = np.random.default_rng(0).integers(0, 255, (100, 33, 47, 3), dtype=np.uint8)
    out = protocol_frames(video)
    assert out.shape == (49, 9, 14, 3) and out.dtype == np.uint8
    assert np.abs(out[10].astype(int).mean() - video[frame_indices(100)[10]].astype(int).mean()) < 8
    plain, zero = if_prompt(False), if_prompt(True)
    assert plain != zero and "{instruction}" in plain and "{instruction}" in zero and "HUMAN HANDS" in zero


@pytest.fixture
def video_folder(tmp_path, cfg, renderer):
    """Ground-truth solution videos (should pass IF), still videos (should fail), a bad name, a corrupt file."""
    tasks = load_benchmark(cfg.world)[:6]
    for i, t in enumerate(tasks):
        scene = Scene.from_json(t.scene_json)
        if i < 4:
            agent, path = simulate_caption(scene, t.solution, cfg.world.frames)
            frames = renderer.render_path(scene, agent, path)
        else:
            frames = np.repeat(t.image[None], cfg.world.frames, axis=0)
        folder = tmp_path / "nested" if i == 5 else tmp_path  # found recursively, as upstream globs **/*.mp4
        folder.mkdir(exist_ok=True)
        write_mp4(folder / f"{i}_{t.task.replace(' ', '_')}.mp4", frames)
    (tmp_path / "notes.txt").write_text("not a video")  # ignored, as upstream ignores it
    (tmp_path / "no_index.mp4").write_bytes(b"\x00")
    (tmp_path / "9_broken_video.mp4").write_bytes(b"\x00\x01garbage")
    return tmp_path


def test_world_judge_on_a_dreamgen_folder(video_folder, cfg, judge, tmp_path_factory):
    result = evaluate_folder(video_folder, WorldDreamGenAnswerer(judge, cfg.world.resolution), zero_shot=True)
    agg = result["aggregate"]
    assert agg["n_videos"] == 7 and agg["n_scored"] == 6 and agg["zero_shot"] is True
    assert agg["counts"] == {"bad_name": 1, "unreadable_video": 1}
    by_idx = {v["idx"]: v for v in result["videos"]}
    assert all(by_idx[i]["if_success"] for i in range(4)) and not any(by_idx[i]["if_success"] for i in (4, 5))
    assert all(by_idx[i]["pa_success"] for i in range(6))
    assert agg["instruction_following"] == pytest.approx(4 / 6)
    json.dumps(result)  # JSON-ready


def test_tiny_transformers_vlm_on_a_dreamgen_folder(video_folder, tmp_path_factory):
    from wmsd_ray.vlm.roles import VLMDreamGenAnswerer
    from wmsd_ray.vlm.tiny import make_tiny_qwen_vl
    from wmsd_ray.vlm.transformers_backend import TransformersVLM

    vlm = TransformersVLM(str(make_tiny_qwen_vl(tmp_path_factory.mktemp("vlm"))))
    result = evaluate_folder(video_folder, VLMDreamGenAnswerer(vlm, max_new_tokens=3))
    agg = result["aggregate"]
    assert agg["n_scored"] == 6
    unparsed = agg["counts"].get("unparsed_if", 0)
    assert unparsed == sum(1 for v in result["videos"] if not v["error"] and v["if_reply"][:1] not in ("0", "1"))


@pytest.mark.parametrize("flag, expected", [("--zero-shot", True), ("--no-zero-shot", False)])
def test_eval_cli_dreamgen_flag_reaches_the_results(flag, expected, video_folder, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "dg"
    r = subprocess.run([sys.executable, "-m", "wmsd_ray.eval", "--benchmark", "dreamgen", "--data", str(video_folder),
                        flag, "--out", str(out)], cwd=Path(__file__).resolve().parents[2],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((out / "dreamgen.json").read_text())
    assert result["aggregate"]["zero_shot"] is expected
    assert all(v["zero_shot"] is expected for v in result["videos"])
