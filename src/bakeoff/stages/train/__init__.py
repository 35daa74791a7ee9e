"""The training stage: every training mode of both frameworks from the same weights, data and order.

`stage.py` is the run's entry, `training.py` the parent-side orchestration and records, `shared.py`
what the framework workers (`bakeoff.frameworks.*.train`) read.
"""
