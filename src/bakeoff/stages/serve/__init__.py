"""The serve stage: real model servers started by bakeoff, driven by one load generator, stopped clean."""

# What a TF Serving record's `implementation` says when bakeoff's own implementation of TF Serving's
# APIs stood in for tensorflow_model_server: the launcher writes it, the report and the claims read it.
OWN_TFSERVING = "TF Serving API, bakeoff's implementation"
