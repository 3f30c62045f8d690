"""Generated from api/runtime/v1alpha1/spikeport.proto."""
