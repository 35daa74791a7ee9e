"""The distributed stage: data-parallel training of the twins with torch.distributed and tf.distribute."""
