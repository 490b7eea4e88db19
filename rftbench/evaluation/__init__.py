"""The evaluator: clean accuracy and accuracy under each threat model of a suite."""
