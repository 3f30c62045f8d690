"""The kubelet plugin of one node.

Decide (pure, no I/O): ``plan`` (a claim's allocation -> ClaimPlan, status entries), ``recovery``
(rollback victims; keep, recreate or release on restart; lost claims; spike sockets), ``config``
(opaque PartitionConfig), ``publisher.plan`` (slice writes); ``records`` is their data.
Act (thin side effects): ``driver`` (the Preparer's wiring), ``node`` (chips, checkpoint, CDI,
lock), ``prepare``, ``unprepare``, ``rollback``, ``reconcile``, ``claimstatus``, ``spikeports``,
``checkpoint`` and ``nodelock`` (files), ``cdi``, ``publisher``, ``health``, ``app``.
The ResourceSlice bodies it publishes are built in darwin_dra.resources.
"""
