"""Other machines edgerec checks its artifacts on: an emulated ARM64 root (qemu-user)."""

CPUS = ("cortex-a53", "cortex-a76", "max")  # emulated ARM64 CPUs: an in-order little core, a big core, every feature
