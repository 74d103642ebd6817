"""The files a job leaves with ComfyUI, named so they can be found, and removed in managed mode.

ComfyUI never deletes an output or an uploaded input. Every file of a job therefore carries its
prompt id: saves go to ``output/<prefix>/<prompt_id>-<node>...`` (the per-job filename prefix) and
uploads to ``input/<prefix>/<prompt_id>-<name>``, ``<prefix>`` being the output prefix setting.

In managed mode the generator owns its ComfyUI's data directory (``{data_dir}``, which the command
points ComfyUI's ``output``, ``input`` and ``temp`` folders at), so once a job is over (its files
streamed, or it failed) they are deleted here. Before each start of the process, whatever a crash
left in the two ``<prefix>`` folders goes too: no job can need the files of a process that is
gone. Previews in ``temp/`` are left alone: a cached preview node hands the same file to later
jobs, and ComfyUI empties ``temp/`` itself at every start. In attached mode ComfyUI may be on
another host: the operator removes old files under those folders (README).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from pathlib import Path

log = logging.getLogger("mediagen.generator.files")
MAX_NAME_BYTES = 200
"""Uploaded names are cut to this (with the prompt id in front), well under a file system's 255."""


def upload_name(prompt_id: str, filename: str) -> str:
    """``<prompt_id>-<filename>``, the stem cut short (the extension kept) when too long."""
    name = f"{prompt_id}-{filename}"
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    stem, dot, extension = filename.rpartition(".")
    if not dot or len(extension) > 16:
        stem, extension = filename, ""
    room = MAX_NAME_BYTES - len(prompt_id) - 2 - len(extension.encode())
    short = stem.encode()[:room].decode(errors="ignore")
    return f"{prompt_id}-{short}.{extension}" if extension else f"{prompt_id}-{short}"


class JobFiles:
    """The job files under one managed ComfyUI's data directory."""

    def __init__(self, data_dir: Path, prefix: str) -> None:
        self.data_dir = data_dir
        self._folders = (data_dir / "output" / prefix, data_dir / "input" / prefix)
        self._warned = False

    async def remove(self, prompt_id: str, expected: int = 0) -> None:
        """Delete the job's outputs and uploads.

        ``expected``: outputs the history listed. None of them found means ComfyUI writes its
        outputs elsewhere (the command lacks ``--output-directory {data_dir}/output``): said once.
        """
        removed = await asyncio.to_thread(self._remove, prompt_id)
        if expected and not removed and not self._warned:
            self._warned = True
            log.warning(
                "no output of prompt %s found under %s: ComfyUI writes elsewhere, so nothing it "
                "writes is ever removed (start it with --output-directory {data_dir}/output "
                "--input-directory {data_dir}/input)",
                prompt_id,
                self._folders[0],
            )

    def _remove(self, prompt_id: str) -> int:
        """Returns how many outputs were removed."""
        outputs, inputs = (list(folder.glob(f"{prompt_id}-*")) for folder in self._folders)
        for path in (*outputs, *inputs):
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove %s: %s", path, exc)
        return len(outputs)

    def sweep(self) -> None:
        """Before the process starts: nothing of an earlier process's jobs is needed any more."""
        for folder in self._folders:
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
