"""Video world models: backbone adapters over diffusers, codecs, text encoders, samplers, LoRA."""
from .backbones import BACKBONES, Backbone, Condition
from .loading import build_backbone, save_checkpoint
from .text import PromptEmbeds, TextEncoder

__all__ = ["BACKBONES", "Backbone", "Condition", "PromptEmbeds", "TextEncoder", "build_backbone", "save_checkpoint"]
