"""Generated from api/chiphost/v1alpha1/chiphost.proto."""
