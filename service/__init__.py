"""The flash-loan decisioning service: the Flask app, its wiring and its command line."""
