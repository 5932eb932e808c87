"""Compression (edgerec.compress): structured pruning, knowledge distillation, int8 calibration, each gated by
ranking quality; config.py holds the torch-free configs, steps.py runs them."""
