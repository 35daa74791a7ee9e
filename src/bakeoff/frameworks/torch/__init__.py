"""The PyTorch backend (imported only inside torch worker processes)."""
