"""What exists: devices, links, switches and the routes between GPUs (no notion of time)."""
