"""Regenerate the Python code of the mediagen API from ``protos/``.

The generated modules are committed so that ``import mediagen.v1.generator_pb2``
works from a plain install; ``tests/test_protos.py`` regenerates them into a
temporary folder and fails when the committed copy has drifted. Run it with
``make protos`` (or ``python tools/gen_protos.py``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import google.rpc.status_pb2
import grpc_tools

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE_DIR = Path("mediagen") / "v1"
INIT_TEXT = '"""Generated code of the mediagen.v1 API; regenerate with ``make protos``."""\n'


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))


def include_dirs() -> list[Path]:
    """protoc's own well-known types, plus google/rpc/*.proto from googleapis-common-protos."""
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    googleapis_root = Path(google.rpc.status_pb2.__file__).parent.parent.parent
    return [PROTO_ROOT, well_known, googleapis_root]


def generate(out_root: Path) -> list[Path]:
    """Write the generated package under ``out_root`` and return the files written."""
    plugin_dir = Path(sys.executable).parent
    args = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        *(f"-I{d}" for d in include_dirs()),
        f"--plugin=protoc-gen-mypy={plugin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={plugin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_root}",
        f"--grpc_python_out={out_root}",
        f"--mypy_out=quiet:{out_root}",
        f"--mypy_grpc_out=quiet:{out_root}",
        *(str(p.relative_to(PROTO_ROOT)) for p in proto_files()),
    ]
    subprocess.run(args, check=True, cwd=PROTO_ROOT)
    package = out_root / PACKAGE_DIR
    (package / "__init__.py").write_text(INIT_TEXT)
    (out_root / "mediagen" / "py.typed").touch()
    return sorted(p for p in package.iterdir() if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT, help="root to write mediagen/v1 under")
    out_root = parser.parse_args().out
    with tempfile.TemporaryDirectory() as tmp:
        written = generate(Path(tmp))
        target = out_root / PACKAGE_DIR
        target.mkdir(parents=True, exist_ok=True)
        for stale in target.glob("*_pb2*.py*"):
            stale.unlink()
        for path in written:
            shutil.copy2(path, target / path.name)
    print(f"generated {len(written)} files into {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
