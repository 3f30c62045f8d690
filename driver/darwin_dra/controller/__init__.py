"""The cluster-level controller: DeviceClasses, fabric slices, binding conditions, leader lease."""
