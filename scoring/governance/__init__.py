"""Governance of models and policies: the reasons' catalogue, drift, promotion checks and
strategies."""
