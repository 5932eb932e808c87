"""GMF, MLP and NeuMF (ncf.py), their training (training.py, config.py) and checkpoints (checkpoint.py)."""
