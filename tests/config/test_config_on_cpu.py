import pytest
import yaml

from wmsd_ray.config import Config, dump_yaml, load, load_config, to_dict
from wmsd_ray.errors import ConfigError


def test_default_preset_matches_dataclass_defaults():
    # configs/embedded.yaml documents the defaults; it must not drift from them.
    assert to_dict(load_config()) == to_dict(Config())


def test_dotted_overrides_are_typed():
    cfg = load_config(overrides=["world.grid=5", "world.resolution=40", "seed=3", "world.colors=[red,green,blue,cyan]"])
    assert (cfg.world.grid, cfg.world.resolution, cfg.seed) == (5, 40, 3)
    assert cfg.world.colors == ["red", "green", "blue", "cyan"]
    assert cfg.world.cell == 8
    # YAML 1.1 reads "2e-3" as a string; a float field takes it as the number it spells
    assert load_config(overrides=["learner.lr=2e-3", "learner.rl_lr=5E-4"]).learner.lr == 2e-3


@pytest.mark.parametrize("override, fragment", [
    ("world.gird=5", "unknown config key 'world.gird'"),
    ("wrld.grid=5", "unknown config key 'wrld'"),
    ("world.grid=abc", "world.grid must be an int"),
    ("world.grid=true", "world.grid must be an int"),
    ("world.grid=3", "world.grid must be >= 4"),
    ("world.resolution=30", "multiple of world.grid"),
    ("world.colors=[red,green,blue,pink]", "unknown colour 'pink'"),
    ("world.held_out_families=[nope]", "unknown family 'nope'"),
    ("proposer.backend=gpt", "proposer.backend must be one of"),
    ("check.noise_sigma=loud", "check.noise_sigma must be a float"),
    ("world", "must look like key.path=value"),
    ("model.backbone=sora", "model.backbone must be one of ['wan', 'ltx2', 'hunyuan15']"),
    ("model.lora.rank=0", "model.lora.rank must be >= 1"),
    ("model.lora.rnak=4", "unknown config key 'model.lora.rnak'"),
    ("model.prediction=eps", "model.prediction must be 'x0' or 'velocity'"),
    ("sampling.eta=-1", "sampling.eta must be >= 0"),
    ("algorithm.rl_losses={flow_grpo: 1.0}", "flow_grpo, which needs SDE sampling: set sampling.eta > 0"),
    ("eval.prompt=caption", "eval.prompt must be 'solution', 'task' or 'outcome'"),
    ("judge.backend=vllm", "judge.backend=vllm needs judge.vlm.model"),
    ("algorithm.rl_losses={awm:1.0}", "{awm:1.0} needs a space after the colon"),
    ("algorithm.rl_losses={awm: x}", "algorithm.rl_losses.awm must be a float"),
    ("algorithm.anchor_on=gpu", "algorithm.anchor_on must be learner or demonstrator"),
])
def test_bad_config_names_the_key(override, fragment):
    with pytest.raises(ConfigError) as err:
        load_config(overrides=[override])
    assert fragment in str(err.value)


def test_unknown_key_in_yaml_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("world:\n  grid: 4\n  colours: [red]\n")
    with pytest.raises(ConfigError, match="unknown config key 'world.colours'.*allowed in world: .*colors"):
        load(Config, p)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(overrides=["world.frames=7", "data.train_scenes=3"])
    dump_yaml(cfg, tmp_path / "config.yaml")
    again = load(Config, tmp_path / "config.yaml")
    assert to_dict(again) == to_dict(cfg)
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["world"]["frames"] == 7


def test_anchor_on_the_demonstrator_needs_an_anchor_term():
    assert load_config(overrides=["algorithm.anchor_on=demonstrator"]).algorithm.anchor_on_demonstrator
    with pytest.raises(ConfigError, match="needs an anchor term"):
        load_config(overrides=["algorithm.anchor_on=demonstrator", "algorithm.rl_losses={awm: 1.0}"])


def test_phase_batch_sizes_keep_the_ablation_matched_to_rl():
    cfg = load_config(overrides=["learner.batch_size=16", "learner.phase_batch={distill: 8, rl: 12}"])
    assert [cfg.learner.batch_for(p) for p in ("distill", "rl", "ablation")] == [8, 12, 12]
    plain = load_config(overrides=["learner.batch_size=16", "learner.phase_batch={}"])
    assert [plain.learner.batch_for(p) for p in ("distill", "rl", "ablation")] == [16, 16, 16]
    with pytest.raises(ConfigError, match="the ablation uses RL's batch"):
        load_config(overrides=["learner.phase_batch={ablation: 8}"])
    with pytest.raises(ConfigError, match="phase_batch values must be >= learner.workers"):
        load_config(overrides=["learner.workers=2", "learner.phase_batch={distill: 1}"])


def test_config_loads_and_validates_without_torch_or_the_world():
    """Validation checks names from a leaf module; it must not import torch, diffusers or the world."""
    import subprocess
    import sys

    code = ("import sys; from wmsd_ray.config import load_config; load_config(); "
            "print(sorted(m for m in sys.modules if m in ('torch', 'diffusers', 'transformers', 'ray') "
            "or m.startswith(('wmsd_ray.world', 'wmsd_ray.algorithms', 'wmsd_ray.models'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_a_retired_key_is_ignored_with_a_warning_so_old_run_configs_still_load(tmp_path, caplog):
    old = tmp_path / "old.yaml"
    old.write_text("logging:\n  wandb: disabled\n  videos_every: 100\n")
    with caplog.at_level("WARNING"):
        cfg = load_config(str(old), ["seed=3"])
    assert cfg.logging.wandb == "disabled" and cfg.seed == 3 and not hasattr(cfg.logging, "videos_every")
    assert "logging.videos_every" in caplog.text and "retired" in caplog.text


def test_old_role_names_in_config_keys_still_work_and_name_the_new_key(tmp_path, caplog):
    with caplog.at_level("WARNING"):
        cfg = load_config(None, ["actors.sampler.count=3", "algorithm.teacher_mix=0.5", "train.teacher_samples=4"])
    assert cfg.actors.executor.count == 3 and cfg.algorithm.demonstration_mix == 0.5
    assert cfg.train.demonstrator_samples == 4
    assert "'actors.sampler' is now 'actors.executor'" in caplog.text
    old = tmp_path / "old.yaml"  # a run folder's config.yaml from before the rename
    old.write_text(yaml.safe_dump({"actors": {"sampler": {"count": 2}}, "algorithm": {"policy_rows": "all"}}))
    cfg = load_config(str(old))
    assert cfg.actors.executor.count == 2 and cfg.algorithm.executor_rows == "all"
    old.write_text(yaml.safe_dump({"train": {"teacher_eta": 0.5, "demonstrator_eta": 0.2}}))
    with pytest.raises(ConfigError, match="sets both"):
        load_config(str(old))
