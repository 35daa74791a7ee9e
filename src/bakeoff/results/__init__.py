"""Run directories and the records stages write into them."""
