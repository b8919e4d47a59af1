"""Using a trained decoder: the Python API (:mod:`~brain2text.inference.decoder`) and raw
recordings turned into its features (:mod:`~brain2text.inference.raw`)."""
