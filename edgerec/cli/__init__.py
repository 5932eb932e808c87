"""The `edgerec` command: one module per command, each parsing its flags into a config, calling the verb and
printing the result (main.py assembles them)."""
