"""Rank: re-ranking of retrieved candidates (learning-to-rank lives here)."""
