"""The kubelet plugin's decisions (pure functions) and its thin side effects: opaque config,
checkpoint, CDI specs, ResourceSlice bodies."""
