"""The OpenAI-compatible Images API kind (``/v1/images/generations`` and ``/v1/images/edits``)."""

from generator_service.providers.images_api.backend import ImagesApiBackend

__all__ = ["ImagesApiBackend"]
