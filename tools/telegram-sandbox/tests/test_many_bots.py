"""Several bot tokens on one sandbox: each bot has its own world (chats, updates, flood
windows); the control API and the page pick a bot with ?bot=<bot id>."""

from __future__ import annotations

import base64

import httpx

from cctelegram_sandbox import create_app
from cctelegram_sandbox.config import ManualClock, SandboxConfig

FIRST = "111111:first-token-abcdefghijklmnop"
SECOND = "222222:second-token-abcdefghijklmno"
OTHER = "333333:other-token-abcdefghijklmnopq"


async def test_two_bots_have_their_own_chats_updates_and_limits() -> None:
    app = create_app(SandboxConfig(token=FIRST, extra_tokens=(SECOND,), clock=ManualClock()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        me = (await client.post(f"/bot{SECOND}/getMe")).json()["result"]
        assert me["id"] == 222222
        assert (await client.post(f"/bot{OTHER}/getMe")).status_code == 401

        for bot in (111111, 222222):
            created = await client.post(
                "/sandbox/api/chats",
                params={"bot": bot},
                json={"type": "private", "user": {"id": 7}},
            )
            assert created.status_code == 201
        for token in (FIRST, SECOND):
            sent = await client.post(f"/bot{token}/sendMessage", json={"chat_id": 7, "text": "hi"})
            assert sent.status_code == 200
        # One message per second per chat is per bot: the first bot's second message is
        # refused, the second bot was never slowed by it.
        again = await client.post(f"/bot{FIRST}/sendMessage", json={"chat_id": 7, "text": "x"})
        assert again.status_code == 429
        first = (await client.get("/sandbox/api/chats/7/messages")).json()
        second = (await client.get("/sandbox/api/chats/7/messages", params={"bot": 222222})).json()
        assert [m["text"] for m in first] == ["hi"]
        assert [m["text"] for m in second] == ["hi"]
        assert second[0]["from"]["id"] == 222222

        await client.post(
            "/sandbox/api/chats/7/messages", params={"bot": 222222}, json={"text": "to bot 2"}
        )
        one = (await client.post(f"/bot{FIRST}/getUpdates", json={"timeout": 0})).json()
        two = (await client.post(f"/bot{SECOND}/getUpdates", json={"timeout": 0})).json()
        assert one["result"] == []
        assert [u["message"]["text"] for u in two["result"]] == ["to bot 2"]

        # The page lists the bots (it links each one's view, /?bot=<id>).
        bots = (await client.get("/sandbox/api/bots")).json()
        assert [(b["id"], b["default"]) for b in bots] == [(111111, True), (222222, False)]
        page = await client.get("/", params={"bot": 222222})
        assert "bot-switch" in page.text


async def test_a_file_sent_to_the_second_bot_is_downloaded_from_its_world() -> None:
    app = create_app(SandboxConfig(token=FIRST, extra_tokens=(SECOND,), clock=ManualClock()))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
        for bot in (111111, 222222):
            created = await client.post(
                "/sandbox/api/chats",
                params={"bot": bot},
                json={"type": "private", "user": {"id": 7}},
            )
            assert created.status_code == 201
        await client.post(f"/bot{FIRST}/getMe")  # the first bot's world is the default one
        for bot, content in ((111111, b"for bot one\n"), (222222, b"for bot two\n")):
            sent = await client.post(
                "/sandbox/api/chats/7/messages",
                params={"bot": bot},
                json={
                    "document": {
                        "file_name": "note.txt",
                        "content_base64": base64.b64encode(content).decode(),
                    }
                },
            )
            assert sent.status_code == 201
        paths = {}
        for token in (FIRST, SECOND):
            (update,) = (await client.post(f"/bot{token}/getUpdates", json={})).json()["result"]
            file_id = update["message"]["document"]["file_id"]
            found = (await client.post(f"/bot{token}/getFile", json={"file_id": file_id})).json()
            paths[token] = found["result"]["file_path"]
        one = await client.get(f"/file/bot{FIRST}/{paths[FIRST]}")
        two = await client.get(f"/file/bot{SECOND}/{paths[SECOND]}")
        assert (one.status_code, one.content) == (200, b"for bot one\n")
        assert (two.status_code, two.content) == (200, b"for bot two\n")
        # A token the sandbox does not serve gets Telegram's bare 404.
        assert (await client.get(f"/file/bot{OTHER}/{paths[SECOND]}")).status_code == 404
