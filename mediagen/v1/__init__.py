"""Generated code of the mediagen.v1 API; regenerate with ``make protos``."""
