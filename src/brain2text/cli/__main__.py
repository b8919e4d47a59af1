"""``python -m brain2text.cli``, the same as ``brain2text``."""

import sys

from brain2text.cli import main

sys.exit(main())
