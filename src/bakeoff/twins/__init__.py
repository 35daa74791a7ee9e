"""The twins: one model in both frameworks, with one weight set, proven to compute the same thing.

spec -> graph (`bakeoff.spec`) -> `canonical.py` (the canonical weight set both twins load) ->
framework builders and weight mappings (`bakeoff.frameworks.{torch,keras}.{build,weights}`) ->
`parity.py` (activations and gradients layer by layer, the first divergent layer).
`byo.py` loads a user's own model objects (`--torch FILE.py:NAME`, `--keras FILE.py:NAME`),
`layout.py` reads their `--input-shape`, and `explain.py` says why a pair diverges, with the fix.
"""
