"""The test kit shared by every layer (not fixtures: those live in conftest.py files).

- `timing`: the one time scale (`TICKER_TEST_TIMEOUT_FACTOR`), `timeout`, `UNIT_S`, `eventually`.
- `servers`: real server processes (`Server`, `launch`, `ServerFactory`), `free_port`.
- `wsclient`: raw-frame WebSocket clients that stand in for a page; `ticker.client` is the real one.
- `sessions`: a session inside a real `Runtime`, read as a transport would.
- `protocol`: the AsyncAPI document as JSON Schema validators.
"""
