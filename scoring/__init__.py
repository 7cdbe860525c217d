"""Features, training, model artifacts, explanations, reason codes and credit policy."""
