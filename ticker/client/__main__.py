"""`python -m ticker.client AAPL MSFT --url ws://127.0.0.1:8080/ws`."""

from __future__ import annotations

import sys

from ticker.client.cli import main

sys.exit(main())
