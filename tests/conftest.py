import numpy as np
import torch
import pytest

from wmsd_ray.config import Config, WorldConfig, load_config
from wmsd_ray.world.judge import WorldJudge
from wmsd_ray.world.render import Renderer


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
