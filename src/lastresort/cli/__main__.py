"""``python -m lastresort.cli``: the ``lastresort`` command."""

import sys

from .app import main

sys.exit(main())
