"""A broken model is one clear error line from the driver, before a run folder or Ray exists."""
import json
import shutil
import subprocess
import sys

import pytest
from conftest import hub_config

from wmsd_ray.config import load_config
from wmsd_ray.errors import ConfigError
from wmsd_ray.models.loading import check_model


def broken_copy(folder, tmp_path, name):
    target = tmp_path / name
    shutil.copytree(folder, target)
    return target


def edit_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("breakage, fragment", [
    ("missing_vae", "missing subfolder vae/"),
    ("other_pipeline", "holds a FluxPipeline; model.backbone=ltx2 needs one of LTX2ImageToVideoPipeline"),
    ("config_vs_weights", "config and weights do not match"),
    ("unnamed_component", "model_index.json names no connectors"),
    ("no_index", "not a diffusers pipeline folder (no model_index.json)"),
])
def test_broken_hub_folder_names_what_is_wrong(breakage, fragment, tiny_hub, tmp_path):
    repo = broken_copy(tiny_hub("ltx2-i2v"), tmp_path, breakage)
    if breakage == "missing_vae":
        shutil.rmtree(repo / "vae")
    elif breakage == "other_pipeline":
        edit_json(repo / "model_index.json", _class_name="FluxPipeline")
    elif breakage == "config_vs_weights":
        edit_json(repo / "transformer" / "config.json", attention_head_dim=16)
    elif breakage == "unnamed_component":
        index = json.loads((repo / "model_index.json").read_text())
        del index["connectors"]
        (repo / "model_index.json").write_text(json.dumps(index))
    else:
        (repo / "model_index.json").unlink()
    cfg = hub_config(repo, "ltx2-i2v")
    with pytest.raises(ConfigError) as err:
        check_model(cfg.model, cfg.world)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_an_intact_hub_folder_passes_the_check(tiny_hub):
    for variant in ("wan2.2-i2v-a14b", "hunyuan1.5-i2v"):
        cfg = hub_config(tiny_hub(variant), variant)
        check_model(cfg.model, cfg.world)


def test_hub_model_must_predict_velocity():
    with pytest.raises(ConfigError, match="pipelines predict velocity"):
        load_config(None, ["model.hub=/somewhere", "model.checkpoint="])


def run_main(*overrides, cwd):
    return subprocess.run([sys.executable, "-m", "wmsd_ray.run", "run_name=bad", f"output_dir={cwd}/out", *overrides],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("kind", ["checkpoint", "hub"])
def test_main_job_stops_before_ray_on_a_bad_model(kind, tiny_hub, tmp_path):
    if kind == "checkpoint":
        proc = run_main(f"model.checkpoint={tmp_path / 'nowhere'}", cwd=tmp_path)
        fragment = "model.checkpoint: no checkpoint folder at"
    else:
        repo = broken_copy(tiny_hub("wan2.1-i2v"), tmp_path, "repo")
        shutil.rmtree(repo / "text_encoder")
        proc = run_main("model.checkpoint=", "model.prediction=velocity", f"model.hub={repo}", cwd=tmp_path)
        fragment = "missing subfolder text_encoder/"
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "torchvision" not in ln]
    assert proc.returncode == 2 and len(lines) == 1 and fragment in lines[0], proc.stderr
    assert "Ray:" not in proc.stdout and not (tmp_path / "out" / "bad").exists()
