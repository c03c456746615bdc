"""``python -m core.cli``: the command-line entry point (see :mod:`core.apps.cli`)."""

import sys

from core.apps.cli import main

if __name__ == "__main__":
    sys.exit(main())
