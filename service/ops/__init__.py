"""Operating the service: settings and their secret checks, metrics, JSON logs and the
rate-limit counters. Below persistence and the use cases; imports only the domain."""
