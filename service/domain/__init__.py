"""The domain's values, free of Flask and of the database: who calls (principal), the
domain errors, the roles' capabilities, a decision's timeline, and the text forms every table
shares. The bottom layer of the service: it imports no other."""
