"""Measurement support: timers and statistics, worker isolation, resource sampling, environment capture."""
