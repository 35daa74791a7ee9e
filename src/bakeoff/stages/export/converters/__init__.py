"""Model converters behind `bakeoff convert`: ONNX into TensorFlow (onnx2tf, in its own virtualenv)."""
