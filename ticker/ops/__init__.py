"""Operator and developer tools that run beside the service, never inside it: the subscription
janitor (`python -m ticker.ops.janitor`), `make dev` (`python -m ticker.ops.dev`) and the Pub/Sub
emulator runner that `make dev`, the tests and the benchmarks share."""
