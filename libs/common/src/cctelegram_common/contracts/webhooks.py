"""Decision webhooks: the delivery command, its dead letter, and the per-client signing secret."""

from datetime import datetime

from pydantic import Field

from cctelegram_common.contracts.base import Contract, utc_now

SIGNATURE_HEADER = "X-CCTelegram-Signature"
EVENT_HEADER = "X-CCTelegram-Event"
DELIVERY_HEADER = "X-CCTelegram-Delivery"


class WebhookDelivery(Contract):
    """Command ``cctg.webhooks.deliver``: POST ``body`` to ``url``, signed for ``client_id``.

    Published by the events service when an approval with a ``callback_url`` closes, with
    ``Nats-Msg-Id`` = ``delivery_id`` (one per approval and outcome); retried on timeouts and
    5xx until ``created_at`` + the retry window, then dead-lettered.
    """

    delivery_id: str = Field(description="Stable across retries (X-CCTelegram-Delivery)")
    event: str = Field(description="approval.approved / .rejected / .decided / .expired / ...")
    client_id: str = Field(description="Whose webhook secret signs it")
    url: str = Field(max_length=2000, description="The approval's callback_url")
    body: str = Field(description="The exact JSON posted (the signature covers these bytes)")
    approval_id: str
    created_at: datetime = Field(default_factory=utc_now)


class WebhookDeadLettered(Contract):
    """Stored on ``cctg.deadletter.webhook``: a delivery given up on, and why."""

    delivery: WebhookDelivery
    reason: str = Field(description="Refused destination, HTTP status, or timeouts past the window")
    attempts: int
    last_status: int | None = Field(default=None, description="The receiver's last HTTP status")
    dead_at: datetime = Field(default_factory=utc_now)


class CreateWebhookSecretRequest(Contract):
    """RPC ``cctg.auth.rpc.create_webhook_secret``: a new secret for the key's client (the
    previous one stops signing at once)."""

    key_id: str = Field(pattern=r"^[A-Za-z0-9]{12}$", description="A key of the client")
    actor: str | None = Field(default=None, description="Who asks (audit)")
    request_id: str | None = None


class CreatedWebhookSecret(Contract):
    """The secret in clear: in this answer only (auth keeps it encrypted)."""

    client_id: str
    key_id: str
    webhook_secret: str = Field(repr=False, description="whsec_...; store it now, shown once")
    created_at: datetime


class SignWebhookRequest(Contract):
    """RPC ``cctg.auth.rpc.sign_webhook``: auth signs a delivery; the secret never leaves it."""

    client_id: str
    timestamp: int = Field(description="Unix seconds (the t= of the signature)")
    body: str = Field(description="The exact body to be posted")


class WebhookSignature(Contract):
    header: str = Field(description="X-CCTelegram-Signature value: t=<unix>,v1=<hex>")
