"""The fleet: simulated clusters of many nodes, job traces replayed on the real scheduler."""
