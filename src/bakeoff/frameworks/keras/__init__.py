"""The Keras 3 / TensorFlow backend (imported only inside Keras worker processes)."""
