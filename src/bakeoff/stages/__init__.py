"""The stages of `bakeoff run`: one package each, holding everything the parent process does for it.

Each stage package has `stage.py` (`check(graph, options)` before the run directory exists, `run(ctx)`
appending records), its orchestration modules, and, where framework workers take part, `shared.py`:
the case types, mode names and constants both sides use. Framework code (`bakeoff.frameworks`) imports
only a stage's `shared.py`, never its orchestration. A new stage is one new package here plus one line
in `registry.py`. This package imports nothing itself, so importing a `shared.py` stays light.
"""
