"""Training data: real MNIST digits, synthetic data shaped from a spec, or the user's .npz."""
