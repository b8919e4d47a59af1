"""Data flow, lowest layer first.

Ingestion: readers turn raw files into trials (``matfile``: a 2023 ``.mat`` day,
``b2t25``: a Brain-to-Text '25 HDF5 file, ``pickle_import``: a reference pickle); ``features``
selects columns and z-scores them; ``writer`` writes the prepared format, whose schema is
``manifest``. ``prepare_2023`` and ``prepare_b2t25`` are the two layouts' paths, ``prepare``
picks one; ``recording`` recomputes a raw file's features for decoding.

Reading: memory-mapped prepared folder (``dataset``) -> validation carving (``splits``) ->
padded batches (``batches``). Reading a prepared folder imports no ingestion module
(pyproject.toml's import-linter contracts keep both orders). Import the module you need:
importing this package loads none of them."""
