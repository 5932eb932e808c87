"""Foreign NCF models (the NCF authors' Keras h5, RecBole, NVIDIA DLE, any state_dict) -> edgerec checkpoints."""
