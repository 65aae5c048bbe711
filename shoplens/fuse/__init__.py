"""Fuse: combine per-modality vectors into one product representation."""
