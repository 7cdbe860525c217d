"""HTTP views, one blueprint per resource."""
