"""Cluster files: paper presets load through the typed config; autoscaler YAMLs pass Ray's own
schema (the one ``ray up`` validates against); the KubeRay RayJob has what KubeRay needs."""
from pathlib import Path

import pytest
import yaml

from wmsd_ray.config import load_config

ROOT = Path(__file__).resolve().parents[2]


# ZeRO stage per preset follows benchmarks/memory_plan.py: Wan2.2 A14B's two 14B experts need
# their parameters sharded (stage 3); LTX-2 and HunyuanVideo-1.5 train LoRA on one replica (stage 2).
@pytest.mark.parametrize("preset,backbone,zero", [("ltx2_paper.yaml", "ltx2", 2), ("hunyuan15_paper.yaml", "hunyuan15", 2),
                                                  ("wan22_i2v.yaml", "wan", 3)])
def test_paper_presets_load_and_pin_pools_to_node_types(preset, backbone, zero):
    cfg = load_config(str(ROOT / "configs" / preset))
    assert cfg.model.backbone == backbone and cfg.model.hub and not cfg.model.checkpoint
    assert cfg.sampling.group_size == 24 and cfg.proposer.pairs_per_image == 8
    assert cfg.learner.engine == "deepspeed" and cfg.learner.zero_stage == zero and cfg.learner.dtype == "bfloat16"
    assert cfg.judge.backend == "vllm" and cfg.proposer.backend == "vllm"
    for pool in ("proposer", "demonstrator", "executor", "judge"):
        assert "rollout_node" in getattr(cfg.actors, pool).resources
    assert "learner_node" in cfg.learner.resources


@pytest.mark.parametrize("name", ["aws.yaml", "gcp.yaml"])
def test_autoscaler_yaml_passes_rays_schema(name):
    import json

    import jsonschema
    import ray.autoscaler

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    config = yaml.safe_load((ROOT / "cluster" / name).read_text())
    jsonschema.validate(config, schema)  # the schema `ray up` checks; raises on any violation
    types = config["available_node_types"]
    assert types["rollout_gpu"]["resources"] == {"rollout_node": 1}
    assert types["learner_gpu"]["resources"] == {"learner_node": 1}
    assert config["head_node_type"] in types


def test_kuberay_rayjob_manifest_is_complete():
    job = yaml.safe_load((ROOT / "cluster" / "kuberay-rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    spec = job["spec"]
    assert spec["entrypoint"].startswith("python -m wmsd_ray.run --config configs/")
    preset = spec["entrypoint"].split("--config ")[1].split()[0]
    load_config(str(ROOT / preset))  # the preset it runs exists and is valid
    cluster = spec["rayClusterSpec"]
    assert cluster["headGroupSpec"]["template"]["spec"]["containers"]
    groups = {g["groupName"]: g for g in cluster["workerGroupSpecs"]}
    assert set(groups) == {"rollout-gpu", "learner-gpu"}
    for g in groups.values():
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        limits = g["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert int(limits["nvidia.com/gpu"]) >= 1
    yaml.safe_load(spec["runtimeEnvYAML"])
