"""The seed article's testable claims, checked against one run's records.

- `catalogue.py`: the claims as data: what the article says, where, which stage's records decide it;
- `rules.py`: one function per claim that reads a `Run` and returns a `Finding`;
- `check.py`: runs the catalogue over a run (and two runs, for `bakeoff compare`);
- `render.py`: the claims as report.html's section, summary.md lines and a terminal table.

A claim whose stage does not exist yet (serve, distributed, debug, Keras backends) says "not measured"
until that stage writes records in the shape its rule's docstring names; nothing here changes then.
"""
