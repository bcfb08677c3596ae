"""WMSD's learning rules: rewards, group-relative advantages and the loss registry."""
from .advantages import ADVANTAGES, credit_accepted_only, group_advantages
from .losses import LOSSES, LossContext, anchor_targets, rows_with_signal, total_loss
from .rewards import combine_rewards, distill_reward

__all__ = ["ADVANTAGES", "LOSSES", "LossContext", "anchor_targets", "combine_rewards", "credit_accepted_only", "distill_reward",
           "group_advantages", "rows_with_signal", "total_loss"]
