"""The serving process around the engine: settings, the runtime that wires broker, hub and
services, and the HTTP edges (transports, pages, health, metrics, logs, Hypercorn's config).
`ticker.app` (the composition root) and `ticker.serve` (the process entrypoint) stay at the top,
where the contract names them."""
