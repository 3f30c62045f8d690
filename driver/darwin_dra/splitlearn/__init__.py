"""Split learning with spikes at the cut (docs/split-learning.md): a spiking model cut in two,
trained with surrogate gradients in numpy by two processes that share only the cut's traffic,
and the measurements at the cut (bytes, reconstruction, membership inference)."""
