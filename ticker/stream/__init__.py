"""The streaming engine: the hub (accept each tick once, fan it out), a client's session, the
writers' flush clock and the memory broker's simulated feed. No HTTP here: the edges in
`ticker.server` move sessions' frames; the pure rules they apply live in `ticker.core`."""
