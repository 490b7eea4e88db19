"""The training engine: the fused adversarial step, the training loop, checkpoints."""
