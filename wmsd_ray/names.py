"""The names config validates against, in one leaf module (it imports nothing).

The world, the algorithms and the models own the registries these names index; keeping the
names here lets ``import wmsd_ray.config`` check a config without importing torch, diffusers or
the world, and keeps the packages free of import cycles. Each registry asserts at import that
its keys are exactly these names.
"""
PALETTE_NAMES = ("red", "green", "blue", "yellow", "purple", "cyan", "orange")
SHAPE_NAMES = ("square", "circle")
FAMILY_NAMES = ("corner", "edge", "centre", "next_to", "align", "far_from", "half")  # world/tasks.py FAMILIES
LOSS_NAMES = ("off_policy_distill", "awm", "anchor", "on_policy_distill", "flow_grpo")  # algorithms/losses.py
ADVANTAGE_NAMES = ("grpo", "mean", "rloo")  # algorithms/advantages.py
BACKBONE_NAMES = ("wan", "ltx2", "hunyuan15")  # models/backbones
