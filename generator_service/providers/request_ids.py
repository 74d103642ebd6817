"""What names one request to a provider in the statuses it causes.

Every provider failure carries its backend; one made for a job also its job id (the id the caller
sees), and once the provider named the job (a prediction's id) that too. A probe or a cancel
outside a job names only what it knows, so an unknown id is left out of the metadata rather
than sent empty.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestIds:
    backend: str
    """The configured name of the backend the request goes to."""
    job_id: str = ""
    """The job it is made for ("" for a probe, or a cancel that names only the provider's id)."""
    prediction_id: str = ""
    """The provider's id of the job, once it gave one (the predictions kind)."""

    def with_prediction(self, prediction_id: str) -> RequestIds:
        return dataclasses.replace(self, prediction_id=prediction_id)

    def metadata(self, **more: str) -> dict[str, str]:
        """The known ids as a status's ErrorInfo metadata, with ``more`` added."""
        ids = {"backend": self.backend}
        if self.job_id:
            ids["job_id"] = self.job_id
        if self.prediction_id:
            ids["prediction_id"] = self.prediction_id
        return {**ids, **more}
