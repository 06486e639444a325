"""`python -m publisher`: see `publisher.cli`."""

from __future__ import annotations

from publisher.cli import main

raise SystemExit(main())
