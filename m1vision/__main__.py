"""``python -m m1vision``: see :mod:`m1vision.cli`."""

import sys

from m1vision.cli import main

if __name__ == "__main__":
    sys.exit(main())
