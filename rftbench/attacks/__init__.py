"""Adversarial attacks used for training and evaluation (perturbation and projection in fp32)."""
