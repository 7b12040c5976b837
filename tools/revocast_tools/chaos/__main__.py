"""``python -m revocast_tools.chaos``: the same as ``revocast chaos``."""

from __future__ import annotations

import sys

from revocast_tools.chaos import main

raise SystemExit(main(sys.argv[1:]))
