"""bakeoff: PyTorch or TensorFlow, settled by measurement on your own model and hardware."""

__version__ = "0.1.0"
