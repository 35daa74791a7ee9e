"""The input-pipeline stage: torch DataLoader against tf.data on one decode-and-augment workload.

`stage.py` is the run's entry, `pipelines.py` the parent-side orchestration and records, `shared.py`
the workload and timing loop the framework workers (`bakeoff.frameworks.*.pipeline`) share.
"""
