"""Government and bureau data sources: typed records, the consent gate, adapters, the gatherer."""

SCOPES = ("provident_fund", "social_security", "income_tax", "credit_report", "court_records")
