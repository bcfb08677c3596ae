import numpy as np
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
