"""Placement of spiking models onto stages and partitions, traffic first (see docs/placement.md)."""
