"""A simulator of a predictions API of the Replicate kind.

Written from the provider's public HTTP API reference: predictions created at
``/v1/predictions`` (by version) or ``/v1/models/{owner}/{name}/predictions``, optionally held
open with ``Prefer: wait``, read back at ``/v1/predictions/{id}``, cancelled at
``/v1/predictions/{id}/cancel``; outputs are URLs on a delivery host that need no key. Model
input is validated against the model's schema (422 with ``invalid_fields``), progress appears in
``logs`` as tqdm lines, safety refusals and model errors end in ``failed`` with ``error``. Fault
knobs cover 429 bursts with ``retry-after``, 5xx, hangs, slow and truncated downloads.
"""

from .config import Faults, PredictionsSimConfig
from .server import PredictionsSimHandle, start_predictions_sim

__all__ = ["Faults", "PredictionsSimConfig", "PredictionsSimHandle", "start_predictions_sim"]
