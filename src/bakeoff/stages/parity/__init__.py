"""The parity stage: both twins built from one weight set and compared layer by layer (the work itself
lives in `bakeoff.twins.parity`); `stage.py` turns the result into records."""
