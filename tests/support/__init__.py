"""Fixtures and helpers the test suites share: real MinIO, services on ephemeral ports."""
