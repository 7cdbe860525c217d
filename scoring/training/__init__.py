"""Training: fitting (on one machine or a Dask cluster), metrics, references and their
rebuilding. The top layer of scoring."""
