"""Files both ways: what a stored file is, and the send_file tool's input and result.

A file's bytes live in the ``cctg_files`` object store (never in a message): contracts carry
only its id, name, MIME type, size and how Telegram shows it.
"""

from enum import StrEnum

from pydantic import Field, model_validator

from cctelegram_common.contracts.base import Contract
from cctelegram_common.contracts.event_types import EventType

# Telegram's limits for what a bot sends (Bot API "Sending files"): 50 MB for documents,
# 10 MB for photos (sent by multipart upload); bots download at most 20 MB with getFile.
MAX_FILE_BYTES = 50 * 1024 * 1024
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
# What Telegram accepts as a photo; anything else is sent as a document.
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
FILE_ID_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"


class FileKind(StrEnum):
    """How Telegram shows a file: as a document (any type) or as a photo (an image)."""

    DOCUMENT = "document"
    PHOTO = "photo"


class KindChoice(StrEnum):
    """What the caller asks for; ``auto`` sends images up to 10 MB as photos."""

    AUTO = "auto"
    DOCUMENT = "document"
    PHOTO = "photo"


class FileInfo(Contract):
    """One file in the object store (or one a person sent that could not be fetched)."""

    id: str | None = Field(
        description="Download with GET /v1/files/{id}; None when it could not be fetched"
    )
    name: str = Field(description="The file name")
    type: str = Field(description="MIME type")
    size: int = Field(ge=0, description="Bytes")
    kind: FileKind = Field(description="document or photo")
    error: str | None = Field(
        default=None, description="Why a file a person sent was not fetched (too large...)"
    )


class SendFileInput(Contract):
    """``send_file``: a file with a caption, to the same chats as a notification."""

    file_name: str = Field(
        default="file",
        min_length=1,
        max_length=255,
        description="Name shown in Telegram (ignored with file_id: the upload's name is kept)",
    )
    content_base64: str | None = Field(
        default=None,
        description="The bytes, base64. MCP requests are bounded by the gateway's body limit "
        "(1 MiB by default): upload larger files (up to 50 MB) with POST /v1/files",
    )
    file_id: str | None = Field(
        default=None,
        pattern=FILE_ID_PATTERN,
        description="A file uploaded before (POST /v1/files with send=false), instead of bytes",
    )
    content_type: str | None = Field(
        default=None, max_length=100, description="MIME type; guessed from the name if absent"
    )
    kind: KindChoice = Field(
        default=KindChoice.AUTO, description="auto (images ≤ 10 MB as photos), document, photo"
    )
    title: str | None = Field(
        default=None, max_length=200, description="Caption headline; default: the file name"
    )
    description: str = Field(default="", max_length=2000, description="Caption body text")
    type: EventType = Field(
        default=EventType.INFO_NOTIFICATION, description="Event type whose template renders it"
    )
    source: str = Field(default="claude-code", max_length=100, description="Who sends it")
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Same key (per client) = same event_id and one Telegram message",
    )

    @model_validator(mode="after")
    def _one_source(self) -> "SendFileInput":
        if (self.content_base64 is None) == (self.file_id is None):
            raise ValueError("give either content_base64 or file_id")
        return self


class SendFileResult(Contract):
    """The file is stored and its send is queued (the event is stored before this returns)."""

    success: bool
    file: FileInfo
    event_id: str | None = Field(description="Use with get_event_status; None when not sent")
    message: str
