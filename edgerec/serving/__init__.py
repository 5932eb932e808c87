"""Serving on NVIDIA Triton Inference Server: the model repository's configs (`triton_config`), the python-backend
model (`triton_model`, copied into the repository as model.py), the server's own environment (`env`), the server
process (`server`), the client (`client`) and the load generator (`load`). Torch-free."""
