"""Data flow, lowest layer first: raw ``.mat`` sessions (matfile) -> prepared folder (prepare,
pickle_import) -> memory-mapped reader (dataset) -> validation carving (splits) -> padded
batches (batches). Import the module you need: importing this package loads none of them, so
reading a prepared folder does not pull in the ``.mat`` and phonemisation stack."""
