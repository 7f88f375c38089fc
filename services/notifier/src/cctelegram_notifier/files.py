"""Files both ways at the Telegram edge: stored files opened for upload (sendDocument /
sendPhoto), and documents and photos people send fetched (getFile + download) into the
``cctg_files`` object store before their update is published."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from nats.js import JetStreamContext

from cctelegram_common import files
from cctelegram_common.contracts.files import MAX_DOWNLOAD_BYTES, FileInfo, FileKind
from cctelegram_common.logging import get_logger
from cctelegram_notifier.delivery import FileGoneError
from cctelegram_notifier.telegram import (
    BotApi,
    FileDownloader,
    TelegramError,
    TelegramUnavailableError,
    Upload,
)

log = get_logger(__name__)


class ObjectStoreUploads:
    """``UploadSource`` over the object store: each attempt streams the chunks afresh."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def open(self, stored: FileInfo) -> Upload:
        if stored.id is None:
            raise FileGoneError("the file was never stored")
        try:
            found = await files.lookup(self.js, stored.id)
        except files.FileNotFoundInStoreError:
            raise FileGoneError(
                f"file {stored.id} is no longer stored (files are kept for a limited time)"
            ) from None

        def chunks() -> AsyncIterator[bytes]:
            return found.chunks(self.js)

        return Upload(
            field="photo" if stored.kind is FileKind.PHOTO else "document",
            file_name=stored.name,
            content_type=found.file.type,
            size=found.file.size,
            chunks=chunks,
        )


def _attachments(message: dict[str, Any]) -> list[tuple[FileKind, dict[str, Any]]]:
    """The document and/or the largest photo size of a message."""
    found: list[tuple[FileKind, dict[str, Any]]] = []
    document = message.get("document")
    if isinstance(document, dict) and document.get("file_id"):
        found.append((FileKind.DOCUMENT, document))
    photo = message.get("photo")
    if isinstance(photo, list):
        sizes = [size for size in photo if isinstance(size, dict) and size.get("file_id")]
        if sizes:
            largest = max(
                sizes,
                key=lambda s: (
                    int(s.get("width", 0)) * int(s.get("height", 0)),
                    int(s.get("file_size", 0)),
                ),
            )
            found.append((FileKind.PHOTO, largest))
    return found


class InboundFiles:
    """Fetches what a person sent and stores it under ``tg<update_id>-<n>``
    (``tg-<bot>-<update_id>-<n>`` for a named bot, whose update ids are its own; a re-polled
    update overwrites the same objects). A file Telegram will not hand out (over 20 MB) or
    that cannot be fetched now is listed with the reason instead of an id: the update is
    never held back by its file."""

    def __init__(
        self,
        js: JetStreamContext,
        bot: BotApi,
        downloader: FileDownloader,
        *,
        bot_name: str | None = None,
    ) -> None:
        self.js = js
        self.bot = bot
        self.downloader = downloader
        # Update ids are per bot: a named bot's files are stored as tg-<bot>-<update_id>-<n>.
        self.prefix = "tg" if bot_name is None else f"tg-{bot_name}-"

    async def fetch(self, update: dict[str, Any]) -> tuple[FileInfo, ...]:
        message = update.get("message")
        if not isinstance(message, dict):
            return ()
        stored: list[FileInfo] = []
        for index, (kind, attachment) in enumerate(_attachments(message)):
            stored.append(
                await self._fetch_one(
                    f"{self.prefix}{int(update['update_id'])}-{index}", kind, attachment
                )
            )
        return tuple(stored)

    async def _fetch_one(
        self, file_id: str, kind: FileKind, attachment: dict[str, Any]
    ) -> FileInfo:
        name = str(
            attachment.get("file_name") or ("photo.jpg" if kind is FileKind.PHOTO else "file")
        )
        content_type = files.guess_type(
            name, attachment.get("mime_type") or ("image/jpeg" if kind is FileKind.PHOTO else None)
        )
        size = int(attachment.get("file_size") or 0)

        def missing(reason: str) -> FileInfo:
            return FileInfo(
                id=None, name=name, type=content_type, size=size, kind=kind, error=reason
            )

        if size > MAX_DOWNLOAD_BYTES:
            return missing(
                f"not fetched: {size} bytes is over the {MAX_DOWNLOAD_BYTES} bytes (20 MB) "
                "a bot may download"
            )
        try:
            answer = await self.bot.call("getFile", {"file_id": attachment["file_id"]})
            file_path = answer.get("file_path") if isinstance(answer, dict) else None
            if not file_path:
                return missing("not fetched: Telegram gave no file path")
            info = await files.store(
                self.js,
                file_id,
                self.downloader.download(str(file_path)),
                name=name,
                content_type=content_type,
                kind=kind,
                owner=None,
                max_bytes=MAX_DOWNLOAD_BYTES,
            )
        except files.FileTooLargeError:
            return missing(f"not fetched: over {MAX_DOWNLOAD_BYTES} bytes (20 MB)")
        except (TelegramError, TelegramUnavailableError) as error:
            log.warning("inbound_file_not_fetched", file_id=file_id, error=str(error))
            return missing(f"not fetched: {error}")
        log.info("inbound_file_stored", file_id=file_id, size=info.size, kind=kind.value)
        return info
