"""Ray actor classes for the four roles: proposer, demonstrator, executor sampler, judge.

Each actor wraps a backend chosen by config (``wmsd_ray.backends``) or the video model
(``actors.models``); actors exchange records (``wmsd_ray.records``, ``wmsd_ray.rollouts``),
never each other's internals. ``actors.pool`` keeps a pool of one role busy, bounded, and
alive (dead actors replaced, their calls retried whole).
"""
