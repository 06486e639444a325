"""Pure logic shared by the server, the publisher and the dashboard.

Rule: modules here import only the standard library (and orjson and msgspec for speed); nothing
here does I/O.
"""
