"""SpikingPipeline: a model split into stages, placed on chips and nodes (pure decisions)."""
