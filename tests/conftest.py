import numpy as np
import pytest
import torch

from wmsd_ray.config import Config, WorldConfig, load_config
from wmsd_ray.world.judge import WorldJudge
from wmsd_ray.world.render import Renderer


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray cluster for one test module (no dashboard); never ``ray stop``, which would
    end every Ray process on the machine."""
    import ray

    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def cfg() -> Config:
    return load_config()


@pytest.fixture(scope="session")
def world(cfg) -> WorldConfig:
    return cfg.world


@pytest.fixture(scope="session")
def renderer(world) -> Renderer:
    return Renderer(world)


@pytest.fixture(scope="session")
def judge(cfg) -> WorldJudge:
    return WorldJudge(cfg.world, cfg.judge)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


TINY_MODEL = ["model.checkpoint=", "model.layers=2", "model.heads=2", "model.head_dim=16", "model.ffn_dim=64",
              "model.sample_steps=4"]


@pytest.fixture(scope="session")
def text_encoder():
    """The real pretrained MiniLM, loaded once per session."""
    from wmsd_ray.models import TextEncoder

    return TextEncoder("minilm", 48)


@pytest.fixture(scope="session")
def corpus_batch(world):
    """Four captioned corpus videos: (frames (4, T, H, W, 3), captions)."""
    from itertools import islice

    from wmsd_ray.world.corpus import iter_corpus

    items = list(islice(iter_corpus(world, 0), 4))
    return np.stack([v.frames for v in items]), [v.caption for v in items]


def tiny_config(*overrides: str) -> Config:
    return load_config(None, TINY_MODEL + list(overrides))


@pytest.fixture(scope="session")
def tiny_backbone_factory(text_encoder):
    """Fresh tiny random Wan backbones (same shapes as the test configs), sharing one MiniLM."""
    from wmsd_ray.models import build_backbone

    def make(*overrides: str):
        torch.manual_seed(0)
        c = tiny_config(*overrides)
        return build_backbone(c.model, c.world, text_encoder)
    return make


@pytest.fixture(scope="session")
def tiny_images(corpus_batch):
    return corpus_batch[0][:, 0]


GUIDED = {  # each pipeline's guidance, with its default scales (LTX-2: every term of its stack)
    "wan": ["model.guidance.scale=5.0", "model.guidance.scale_2=3.0", "model.guidance.negative_prompt=static"],
    "ltx2": ["model.guidance.scale=3.0", "model.guidance.audio_scale=7.0", "model.guidance.stg_scale=1.0",
             "model.guidance.stg_blocks=[1]", "model.guidance.modality_scale=3.0", "model.guidance.rescale=0.7",
             "model.guidance.negative_prompt=static"],
    "hunyuan15": ["model.guidance.scale=6.0", "model.guidance.negative_prompt=static"],
}


@pytest.fixture(scope="session")
def tiny_hub(tmp_path_factory):
    """Tiny random diffusers pipelines in the real repo layout, each built once per session:
    ``tiny_hub(variant)`` -> its folder."""
    from wmsd_ray.models.tiny_hub import save_tiny_pipeline

    built = {}

    def folder(variant: str):
        if variant not in built:
            built[variant] = save_tiny_pipeline(variant, tmp_path_factory.mktemp(variant.replace(".", "_")) / "repo")
        return built[variant]
    return folder


def hub_config(folder, variant: str, *overrides: str, guided: bool = False) -> Config:
    """The config that runs a tiny hub variant through ``model.hub`` (the cluster loading path)."""
    from wmsd_ray.models.tiny_hub import COMMON, TINY_OVERRIDES

    extra = GUIDED[TINY_OVERRIDES[variant][0].split("=")[1]] if guided else []
    return load_config(None, COMMON + ["model.sample_steps=3"] + TINY_OVERRIDES[variant] + [f"model.hub={folder}",
                                                                                            *extra, *overrides])
