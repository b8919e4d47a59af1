import sys

from brain2text.cli import main

sys.exit(main())
