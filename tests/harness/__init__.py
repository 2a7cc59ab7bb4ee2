"""ramcrypt-host test bench: Debian kernels in QEMU, RAM dumps, key search."""
