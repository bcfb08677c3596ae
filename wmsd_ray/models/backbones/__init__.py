"""Backbone adapters by name (``model.backbone``)."""
from ...names import BACKBONE_NAMES
from .base import Backbone, Condition
from .hunyuan15 import Hunyuan15Backbone
from .ltx2 import LTX2Backbone
from .wan import WanBackbone

BACKBONES: dict[str, type[Backbone]] = {
    WanBackbone.name: WanBackbone,
    LTX2Backbone.name: LTX2Backbone,
    Hunyuan15Backbone.name: Hunyuan15Backbone,
}
assert tuple(BACKBONES) == BACKBONE_NAMES, "wmsd_ray/names.py must list every backbone"

__all__ = ["BACKBONES", "Backbone", "Condition", "Hunyuan15Backbone", "LTX2Backbone", "WanBackbone"]
