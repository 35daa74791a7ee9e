"""Showing results: terminal tables now; HTML and the verdict in later stages."""
