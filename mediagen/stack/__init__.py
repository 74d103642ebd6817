"""Start the parts of a local mediagen stack as processes (MinIO, NATS, services).

Shared by the demo, the end-to-end tests and the benchmarks, so all three run
the system the same way a deployment does: every part its own process.
"""
