"""The training loop and its pure helpers."""
