"""Uploaded files: stable file ids, kept bytes, and image sizes read from headers."""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import struct

from .models import StoredFile

# Real ids start with a type marker; clients only treat them as opaque strings.
_ID_PREFIXES = {"document": "BQACAgIAAxkBAAI", "photo": "AgACAgIAAxkBAAI"}


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def image_size(content: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, GIF or JPEG, or None when it is not one of those."""
    if content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) >= 24:
        width, height = struct.unpack(">II", content[16:24])
        return int(width), int(height)
    if content[:6] in (b"GIF87a", b"GIF89a") and len(content) >= 10:
        width, height = struct.unpack("<HH", content[6:10])
        return int(width), int(height)
    if content.startswith(b"\xff\xd8"):
        index = 2
        while index + 9 < len(content):
            if content[index] != 0xFF:
                return None
            marker = content[index + 1]
            segment_length = int.from_bytes(content[index + 2 : index + 4], "big")
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", content[index + 5 : index + 9])
                return int(width), int(height)
            index += 2 + segment_length
    return None


class FileStore:
    """Every file the bot sent or a person uploaded, by file_id."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}

    def add_upload(
        self, kind: str, content: bytes, file_name: str | None, mime_type: str | None
    ) -> StoredFile:
        digest = _digest(content)
        file_id = f"{_ID_PREFIXES[kind]}{digest[:32]}"
        existing = self.files.get(file_id)
        if existing is not None:
            return existing
        if mime_type in (None, "", "application/octet-stream") and file_name:
            mime_type = mimetypes.guess_type(file_name)[0] or mime_type
        size = image_size(content) if kind == "photo" else None
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=f"AgAD{digest[:12]}",
            kind=kind,
            content=content,
            file_name=None if kind == "photo" else file_name,
            mime_type=None if kind == "photo" else mime_type,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )
        self.files[file_id] = stored
        return stored

    def add_url(self, kind: str, url: str) -> StoredFile:
        # The sandbox has no internet; a URL is remembered, not downloaded.
        digest = _digest(url.encode())
        file_id = f"{_ID_PREFIXES[kind]}{digest[:32]}"
        if file_id not in self.files:
            file_name = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or None
            self.files[file_id] = StoredFile(
                file_id=file_id,
                file_unique_id=f"AgAD{digest[:12]}",
                kind=kind,
                content=None,
                file_name=None if kind == "photo" else file_name,
                mime_type=mimetypes.guess_type(file_name or "")[0] if kind != "photo" else None,
                source_url=url,
            )
        return self.files[file_id]

    def get(self, file_id: str) -> StoredFile | None:
        return self.files.get(file_id)
