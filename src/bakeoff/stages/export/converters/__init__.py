"""Model converters behind `bakeoff convert`: ONNX into TensorFlow (onnx2tf, in its own virtualenv)."""

from bakeoff.errors import UsageError

# `bakeoff convert --direction` -> the conversion artifact it makes
DIRECTIONS = {"torch-to-tf": "torch-onnx-tf", "keras-to-torch": "keras-onnx-torch"}


def conversions(direction: str) -> list[str]:
    """The conversion artifacts of `--direction`: one of DIRECTIONS, or both."""
    if direction not in (*DIRECTIONS, "both"):
        raise UsageError(f"--direction: '{direction}' is not one of {', '.join(DIRECTIONS)}, both")
    return list(DIRECTIONS.values()) if direction == "both" else [DIRECTIONS[direction]]
