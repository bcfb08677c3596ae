"""The learner group (Ray Train; DeepSpeed or DDP engines) and weight synchronisation.

Lands with the runtime issue: losses and advantage estimators in registries,
off-policy then on-policy distillation, Flow-GRPO / AWM, adapter broadcast.
"""
