"""Evaluation: metrics as pure functions, TREC run/qrels I/O."""
