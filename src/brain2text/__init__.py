"""brain2text: train and evaluate phoneme decoders for intracortical speech BCIs."""

__version__ = "0.1.0"
