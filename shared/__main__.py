from revocast.cli import main

raise SystemExit(main())
