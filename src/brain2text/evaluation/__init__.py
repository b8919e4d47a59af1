"""Scoring decoders: edit distances, decoding passes over a split, evaluating run folders."""
