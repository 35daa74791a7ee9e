"""The inference stage: every verified artifact timed in every runtime that can run it.

`stage.py` is the run's entry, `inference.py` runs the cases in workers grouped by runtime family and
turns them into records. The runtimes themselves live beside the stages in `bakeoff.runtimes` (one
module each, one registry), since export verification loads artifacts through them too.
"""
