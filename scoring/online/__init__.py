"""Online scoring: the feature spec, features, the model, policy and decision engine, reasons
and explanations. The bottom layer of scoring."""
