"""Measurement support: worker isolation, environment capture."""
