"""Proposer and judge Ray actors switch from the world to a VLM backend by config alone."""
import numpy as np
import ray

from actors.roles import JudgeActor, ProposerActor, config_payload
from wmsd_ray.config import load_config
from wmsd_ray.vlm.tiny import make_tiny_qwen_vl
from wmsd_ray.world.benchmark import load_benchmark
from wmsd_ray.world.captions import simulate_caption
from wmsd_ray.world.scene import Scene


def test_actors_switch_backend_by_config(local_ray, tmp_path_factory, renderer):
    world_cfg = load_config(None, ["proposer.pairs_per_image=3"])
    vlm = make_tiny_qwen_vl(tmp_path_factory.mktemp("vlm"))
    vlm_cfg = load_config(None, ["proposer.pairs_per_image=3", "proposer.backend=transformers",
                                 f"proposer.vlm.model={vlm}", "proposer.vlm.max_new_tokens=16",
                                 "proposer.vlm.max_attempts=1", "judge.backend=transformers",
                                 f"judge.vlm.model={vlm}", "judge.vlm.frames=2"])
    task = load_benchmark(world_cfg.world)[0]
    scene = Scene.from_json(task.scene_json)
    agent, path = simulate_caption(scene, task.solution, world_cfg.world.frames)
    video = renderer.render_path(scene, agent, path)
    results = {}
    for name, cfg in (("world", world_cfg), ("transformers", vlm_cfg)):
        proposer = ProposerActor.options(num_cpus=0.5).remote(config_payload(cfg))
        judge = JudgeActor.options(num_cpus=0.5).remote(config_payload(cfg))
        proposal = ray.get(proposer.propose.remote(task.image, "scene-0", 0))
        verdicts = ray.get(judge.judge_batch.remote([video], [task.task]))
        results[name] = (proposal, verdicts[0])
        ray.kill(proposer)
        ray.kill(judge)
    world_proposal, world_verdict = results["world"]
    assert len(world_proposal.specs) == 3 and world_verdict.task and world_verdict.source == "world"
    vlm_proposal, vlm_verdict = results["transformers"]
    assert vlm_verdict.source == "transformers:logits" and np.isfinite(vlm_verdict.task_reward)
    assert len(vlm_proposal.specs) + vlm_proposal.rejected["short_of_pairs"] == 3
