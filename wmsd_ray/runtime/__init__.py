"""The driver's parts: cluster connection, sample buffers, checkpoints, metrics, phases."""
