"""``python -m httpy module:app``: see :mod:`httpy.cli`."""

import sys

from .cli import main

sys.exit(main())
