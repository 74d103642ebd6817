"""``GET /view`` and ``POST /upload/image``, plus the download faults.

``/view`` validates in the real order (``/`` or ``..`` in the name -> 400, unknown type -> 400,
subfolder outside the folder -> 403, then only the basename is used, missing -> 404) and serves
files with aiohttp's FileResponse so Range/206, ETag and Last-Modified behave like the real
server. The slow/truncated/corrupted download faults replace FileResponse with a hand-rolled
stream that still announces the full Content-Length.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import mimetypes
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web
from PIL import Image

from .config import Faults
from .files import Folders

FORCED_DOWNLOAD = {"text/html", "text/html-sandboxed", "application/xhtml+xml", "text/javascript", "text/css"}
mimetypes.add_type("audio/flac", ".flac")
mimetypes.add_type("audio/ogg", ".opus")
mimetypes.add_type("image/webp", ".webp")
mimetypes.add_type("video/webm", ".webm")


@dataclass
class ServeStats:
    files_served: int = 0
    bytes_served: int = 0
    uploads: int = 0
    view_requests: list[str] = field(default_factory=list)
    """The last :data:`KEPT_REQUESTS` ``/view`` queries as ``type:subfolder/filename``, whatever
    was answered: what a client tried to read."""


KEPT_REQUESTS = 200


class Files:
    def __init__(self, folders: Folders, faults: Faults) -> None:
        self.folders, self.faults = folders, faults
        self.stats = ServeStats()

    def add_to(self, routes: web.RouteTableDef) -> None:
        routes.get("/view")(self.view)
        routes.post("/upload/image")(self.upload)

    def _resolve(self, query: Mapping[str, str]) -> int | str:
        """The file to serve, or the status code: the real server's checks, in its order."""
        if "filename" not in query:
            return 404
        filename, output_dir = self.folders.annotated(query["filename"])
        if not filename or filename[0] == "/" or ".." in filename:
            return 400
        if output_dir is None:
            output_dir = self.folders.by_type(query.get("type", "output"))
        if output_dir is None:
            return 400
        if "subfolder" in query:
            full = os.path.join(output_dir, query["subfolder"])
            if os.path.commonpath((os.path.abspath(full), output_dir)) != output_dir:
                return 403
            output_dir = full
        path = os.path.join(output_dir, os.path.basename(filename))
        return path if os.path.isfile(path) else 404

    async def view(self, request: web.Request) -> web.StreamResponse:
        query = request.rel_url.query
        asked = f"{query.get('type', 'output')}:{query.get('subfolder', '')}/{query.get('filename', '')}"
        self.stats.view_requests = [*self.stats.view_requests[-(KEPT_REQUESTS - 1) :], asked]
        found = await asyncio.to_thread(self._resolve, query)
        if isinstance(found, int):
            return web.Response(status=found)
        path, filename = found, os.path.basename(found)
        disposition = {"Content-Disposition": f'filename="{filename}"'}
        if "preview" in query or query.get("channel", "rgba") in ("rgb", "a"):
            body, kind = await asyncio.to_thread(_transcode, path, query.get("preview"), query.get("channel"))
            return web.Response(body=body, content_type=kind, headers=disposition)
        kind = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        if kind in FORCED_DOWNLOAD:
            kind = "application/octet-stream"
        self.stats.files_served += 1
        faults = self.faults
        if (
            faults.view_bytes_per_s
            or faults.view_truncate_after is not None
            or faults.view_corrupt
            or faults.view_length_offset
            or faults.view_endless
        ):
            return await self._faulty(request, path, kind, disposition)
        response = web.FileResponse(path, headers={**disposition, "Content-Type": kind})
        self.stats.bytes_served += (await asyncio.to_thread(os.stat, path)).st_size
        return response

    async def _faulty(
        self, request: web.Request, path: str, kind: str, headers: dict[str, str]
    ) -> web.StreamResponse:
        if self.faults.view_endless:
            return await self._endless(request, path, kind, headers)
        size = (await asyncio.to_thread(os.stat, path)).st_size
        response = web.StreamResponse(headers={**headers, "Content-Type": kind})
        offset = self.faults.view_length_offset
        response.content_length = max(size + offset, 0)
        await response.prepare(request)
        limit = self.faults.view_truncate_after
        rate = self.faults.view_bytes_per_s
        sent = 0
        chunk = 64 * 1024 if not rate else max(1, min(64 * 1024, int(rate / 10)))
        handle = await asyncio.to_thread(open, path, "rb")
        with handle:
            while sent < size:
                want = chunk if limit is None else min(chunk, limit - sent)
                block = await asyncio.to_thread(handle.read, want)
                if not block:
                    break
                if self.faults.view_corrupt:
                    block = bytes(b ^ 0xFF for b in block)
                await response.write(block)
                sent += len(block)
                self.stats.bytes_served += len(block)
                if rate:
                    await asyncio.sleep(len(block) / rate)
                if limit is not None and sent >= limit:
                    if request.transport is not None:
                        request.transport.close()
                    return response
        if offset and request.transport is not None:
            request.transport.close()  # a promise of more bytes, or a body cut at the short length
            return response
        await response.write_eof()
        return response

    async def _endless(
        self, request: web.Request, path: str, kind: str, headers: dict[str, str]
    ) -> web.StreamResponse:
        """The file's bytes over and over, chunked, until the client goes away."""
        response = web.StreamResponse(headers={**headers, "Content-Type": kind})
        response.enable_chunked_encoding()
        await response.prepare(request)
        data = await asyncio.to_thread(_read, path)
        block = data * max(1, 64 * 1024 // max(len(data), 1))
        rate = self.faults.view_bytes_per_s
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                await response.write(block)
                self.stats.bytes_served += len(block)
                await asyncio.sleep(len(block) / rate if rate else 0)
        return response

    async def upload(self, request: web.Request) -> web.Response:
        post = await request.post()
        image = post.get("image")
        kind = str(post.get("type") or "input")
        upload_dir = self.folders.by_type(kind)
        if upload_dir is None:
            raise web.HTTPInternalServerError(
                text="500 Internal Server Error\n\nServer got itself in trouble"
            )
        if not isinstance(image, web.FileField) or not image.filename:
            return web.Response(status=400)
        subfolder = str(post.get("subfolder", ""))
        overwrite = str(post.get("overwrite")) in ("true", "1")
        name = await asyncio.to_thread(
            _store, upload_dir, subfolder, image.filename, image.file.read(), overwrite
        )
        if name is None:
            return web.Response(status=400)
        self.stats.uploads += 1
        return web.json_response({"name": name, "subfolder": subfolder, "type": kind})


def _store(upload_dir: str, subfolder: str, filename: str, data: bytes, overwrite: bool) -> str | None:
    """Save an upload like the real server: same bytes -> same name, else ``name (1).ext``."""
    folder = os.path.join(upload_dir, os.path.normpath(subfolder))
    path = os.path.abspath(os.path.join(folder, filename))
    if os.path.commonpath((upload_dir, path)) != upload_dir:
        return None
    os.makedirs(folder, exist_ok=True)
    stem, ext = os.path.splitext(filename)
    if not overwrite:
        counter = 1
        while os.path.exists(path):
            if _same_content(path, data):
                return filename
            filename = f"{stem} ({counter}){ext}"
            path = os.path.join(folder, filename)
            counter += 1
    _write(path, data)
    return filename


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _same_content(path: str, data: bytes) -> bool:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).digest() == hashlib.sha256(data).digest()


def _transcode(path: str, preview: str | None, channel: str | None) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    with Image.open(path) as img:
        if preview is not None:
            parts = preview.split(";")
            fmt = parts[0] if parts[0] in ("webp", "jpeg") and "a" not in (channel or "") else "webp"
            quality = int(parts[-1]) if parts[-1].isdigit() else 90
            out = img.convert("RGB") if fmt == "jpeg" or channel == "rgb" else img
            out.save(buffer, format=fmt, quality=quality)
            return buffer.getvalue(), f"image/{fmt}"
        if channel == "rgb":
            img.convert("RGB").save(buffer, format="PNG")
        else:
            alpha = img.getchannel("A") if img.mode == "RGBA" else Image.new("L", img.size, 255)
            plane = Image.new("RGBA", img.size)
            plane.putalpha(alpha)
            plane.save(buffer, format="PNG")
    return buffer.getvalue(), "image/png"
