"""Put this directory first on PYTHONPATH to run `python -m ticker.serve` on asyncio's own loop.

`ticker.serve` uses uvloop when it can import it; bench C compares both loops this way.
"""

raise ImportError("uvloop disabled for this benchmark run")
