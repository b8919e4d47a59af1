"""brain2text: train and evaluate phoneme decoders for intracortical speech BCIs.

``from brain2text import Decoder`` gives the Python API of a trained run
(:mod:`brain2text.inference.decoder`); it is imported on first use, so that ``import
brain2text`` stays light.
"""

__version__ = "0.1.0"
__all__ = ["Decoder", "Decoding", "__version__"]


def __getattr__(name: str):
    if name in ("Decoder", "Decoding"):
        from brain2text.inference import decoder

        return getattr(decoder, name)
    raise AttributeError(f"module 'brain2text' has no attribute {name!r}")
