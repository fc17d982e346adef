"""The machine under the engine: the device and its lock, memory, short-lived threads, atomic files."""
