"""The serve stage: real model servers started by bakeoff, driven by one load generator, stopped clean."""
