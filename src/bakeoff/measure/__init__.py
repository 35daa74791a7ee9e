"""Measurement support: timers and statistics, worker isolation, resource sampling, environment capture."""

# A difference inside this share is no practical difference, however significant (`--margin`). Here, not
# in stats, so the command line can name its default without importing numpy.
DEFAULT_MARGIN = 0.05
