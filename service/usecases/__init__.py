"""The use cases: the decision flow and the desks around it (retries, consents, reviews,
loans' outcomes, API keys, strategies, promotion, replay, verification, notices, backtests,
monitoring, table checks). They are handed their collaborators; none speaks HTTP."""
