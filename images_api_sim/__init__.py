"""A simulator of an OpenAI-compatible Images API (``/v1/images/generations`` and ``/edits``).

Written from the provider's public API reference so the generator's images backend can be
developed and tested without the provider: the same request and response shapes (JSON bodies,
``b64_json`` and URL items, server-sent events with partial images, the error envelope), bearer
authentication, and fault knobs for what the real service does on a bad day (429 bursts with
``retry-after``, slow streams, truncated bodies, content-policy refusals, 5xx, hangs).
"""

from .config import Faults, ImagesSimConfig
from .server import ImagesSimHandle, start_images_sim

__all__ = ["Faults", "ImagesSimConfig", "ImagesSimHandle", "start_images_sim"]
