"""``python -m core.distributed``: archive-scale scoring on Ray (see :mod:`core.apps.distributed`)."""

import sys

from core.apps.distributed import main

if __name__ == "__main__":
    sys.exit(main())
