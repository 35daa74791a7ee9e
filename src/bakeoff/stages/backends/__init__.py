"""The backends stage: the Keras twin on Keras 3's TensorFlow, PyTorch and JAX backends, each in its own
worker, checked against the PyTorch twin and against each other (`stage.py`). Their training modes and
inference runtimes join the train and infer stages (`--backends`)."""
