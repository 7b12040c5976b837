"""``python -m revocast``: the ``revocast`` command. An entry point, above every layer; nothing
imports it (tests/test_layout.py)."""

from revocast.cli import main

raise SystemExit(main())
