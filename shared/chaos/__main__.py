"""``python -m revocast.chaos``: the same as ``revocast chaos``."""

from __future__ import annotations

import sys

from revocast.chaos import main

raise SystemExit(main(sys.argv[1:]))
