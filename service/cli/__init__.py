"""The ``flashloan`` command: the top layer, which may use every other."""
