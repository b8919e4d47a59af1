"""Using a trained decoder: the Python API (:mod:`~brain2text.inference.decoder`); raw
recordings are turned into its features by :mod:`brain2text.data.recording`."""
