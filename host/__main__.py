"""``python -m sonobridge``: the ``sonobridge`` command."""

import sys

from .cli import main

sys.exit(main())
