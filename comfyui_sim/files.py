"""The three ComfyUI folders and the file-naming rules that clients depend on.

Output names are counters found by scanning the folder (``prefix_00001_.png``), a prefix's
directory part becomes the ``subfolder`` reported in outputs, and a prefix that escapes the
output folder is a run-time error, not a validation error. ``name [temp]`` annotations pick
another folder. These rules mirror ``folder_paths.py`` so clients meet the same names here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TYPES = ("input", "output", "temp")


@dataclass(frozen=True)
class Folders:
    root: Path

    @property
    def input(self) -> str:
        return str(self.root / "input")

    @property
    def output(self) -> str:
        return str(self.root / "output")

    @property
    def temp(self) -> str:
        return str(self.root / "temp")

    def create(self) -> None:
        for name in TYPES:
            (self.root / name).mkdir(parents=True, exist_ok=True)

    def by_type(self, kind: str) -> str | None:
        return {"input": self.input, "output": self.output, "temp": self.temp}.get(kind)

    def annotated(self, name: str) -> tuple[str, str | None]:
        """Split ``"x.png [temp]"`` into the name and the folder it names (None if no tag)."""
        for kind in TYPES:
            tag = f"[{kind}]"
            if name.endswith(tag):
                return name[: -len(tag) - 1], self.by_type(kind)
        return name, None

    def annotated_path(self, name: str) -> str:
        bare, base = self.annotated(name)
        return os.path.join(base or self.input, bare)

    def input_files(self) -> list[str]:
        """Top-level files of ``input/`` (LoadImage's combo list)."""
        try:
            return sorted(e.name for e in os.scandir(self.input) if e.is_file())
        except FileNotFoundError:
            return []


def _expand(prefix: str, width: int, height: int) -> str:
    now = time.localtime()
    values = {
        "%width%": str(width),
        "%height%": str(height),
        "%year%": str(now.tm_year),
        "%month%": f"{now.tm_mon:02}",
        "%day%": f"{now.tm_mday:02}",
        "%hour%": f"{now.tm_hour:02}",
        "%minute%": f"{now.tm_min:02}",
        "%second%": f"{now.tm_sec:02}",
    }
    for key, value in values.items():
        prefix = prefix.replace(key, value)
    return prefix


def _counter_of(entry: str, base: str) -> int | None:
    """The counter of ``base_00012_.ext``, or None when the entry is not one of ours."""
    head = entry[: len(base) + 1]
    if os.path.normcase(head[:-1]) != os.path.normcase(base) or head[-1:] != "_":
        return None
    try:
        return int(entry[len(base) + 1 :].split("_")[0])
    except ValueError:
        return 0


def save_path(prefix: str, output_dir: str, width: int = 0, height: int = 0) -> tuple[str, str, int, str]:
    """Return ``(folder, base name, next counter, subfolder)`` for a filename prefix."""
    if "%" in prefix:
        prefix = _expand(prefix, width, height)
    subfolder = os.path.dirname(os.path.normpath(prefix))
    base = os.path.basename(os.path.normpath(prefix))
    folder = os.path.join(output_dir, subfolder)
    common = os.path.commonpath((output_dir, os.path.abspath(folder)))
    if common != output_dir:
        # A bare Exception on purpose: clients see exception_type "Exception", as from ComfyUI.
        raise Exception(
            "**** ERROR: Saving image outside the output folder is not allowed."
            f"\n full_output_folder: {os.path.abspath(folder)}"
            f"\n         output_dir: {output_dir}"
            f"\n         commonpath: {common}"
        )
    try:
        found = [c for c in (_counter_of(e, base) for e in os.listdir(folder)) if c is not None]
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        found = []
    return folder, base, (max(found) + 1 if found else 1), subfolder


def file_ref(filename: str, subfolder: str, kind: str) -> dict[str, str]:
    return {"filename": filename, "subfolder": subfolder, "type": kind}
