"""`darwin-dra status`: what the live cluster's slices and claims say about each chip."""
