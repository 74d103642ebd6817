"""What names one job in every status and log line it causes: its prompt id and its backend."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JobIds:
    prompt_id: str
    """The id the caller sees (ComfyUI's prompt id, chosen by the generator; a remote job's own)."""
    backend: str
    """The configured name of the backend running the job."""

    def metadata(self, **more: str) -> dict[str, str]:
        """The ids as a status's ErrorInfo metadata, with ``more`` added."""
        return {"prompt_id": self.prompt_id, "backend": self.backend, **more}
