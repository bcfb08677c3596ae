"""WMSD's learning rules: rewards, group-relative advantages and the loss registry."""
from .advantages import ADVANTAGES, group_advantages
from .losses import LOSSES, LossContext, total_loss
from .rewards import combine_rewards, distill_reward

__all__ = ["ADVANTAGES", "LOSSES", "LossContext", "combine_rewards", "distill_reward", "group_advantages", "total_loss"]
