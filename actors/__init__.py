"""Ray actor classes for the four roles: proposer, demonstrator, executor sampler, judge.

Each actor wraps a backend chosen by config (``wmsd_ray.backends``); actors exchange
records (``wmsd_ray.records``), never each other's internals. The actor classes land
with the runtime issue; the proposer and judge backends they will host exist already.
"""
