"""``python -m core.audit`` (see :mod:`core.audit.command`)."""

import sys

from core.audit.command import main

if __name__ == "__main__":
    sys.exit(main())
