"""The chip host: the per-node device process that owns the (simulated) chips, and its client."""
