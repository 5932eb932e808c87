"""Target profiles: the validated schema and the shipped YAML files (schema.py), the pipeline that runs a profile
with the public verbs (pipeline.py), and the comparison of every profile of a folder (compare.py)."""
