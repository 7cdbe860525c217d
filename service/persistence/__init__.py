"""Tables, transactions and what keeps writes safe: the idempotency keys and their locks,
the group committer, checkpoints, the commit's outcome, sealing and the migrations."""
