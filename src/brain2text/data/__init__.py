"""Data flow, lowest layer first: raw ``.mat`` sessions (matfile) -> prepared folder (prepare,
pickle_import) -> memory-mapped reader (dataset) that training and evaluation use."""

from brain2text.data.dataset import PreparedDataset, PreparedSplit, open_prepared
from brain2text.data.matfile import RawSession, read_session
from brain2text.data.pickle_import import import_pickle
from brain2text.data.prepare import prepare

__all__ = [
    "PreparedDataset",
    "PreparedSplit",
    "RawSession",
    "import_pickle",
    "open_prepared",
    "prepare",
    "read_session",
]
