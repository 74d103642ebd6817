"""The predictions kind: a Replicate-style API of predictions that are created, followed, cancelled."""

from generator_service.providers.predictions.backend import PredictionsBackend

__all__ = ["PredictionsBackend"]
