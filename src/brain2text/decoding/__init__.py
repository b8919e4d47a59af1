"""Turning per-frame logits into phoneme sequences."""
