"""The web page in headless Debian chromium: open a chat, see a keyboard, press a button."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect, sync_playwright

from cctelegram_testing.sandbox import run_sandbox

SCREENSHOT = Path("/tmp/cctelegram-sandbox-browser.png")


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.browser
# The first run may install chromium with apt-get inside the fixture; allow for a slow mirror.
@pytest.mark.timeout(1200)
def test_open_chat_press_button_and_the_bot_gets_the_press(chromium: dict[str, Any]) -> None:
    with run_sandbox(flood_control=False) as sandbox:
        sandbox.create_chat(type="private", user={"id": 42, "first_name": "Ann"})
        sandbox.create_chat(type="group", title="Ops team")
        keyboard = {
            "inline_keyboard": [
                [
                    {"text": "Approve", "callback_data": "ap:7:0"},
                    {"text": "Reject", "callback_data": "ap:7:1"},
                ]
            ]
        }
        sent = sandbox.bot(
            "sendMessage",
            chat_id=42,
            text="<b>Deploy</b> to <i>production</i>? <script>alert(1)</script>",
            parse_mode="HTML",
        )
        assert sent["ok"] is False  # <script> is not a Telegram tag
        sent = sandbox.bot(
            "sendMessage",
            chat_id=42,
            text=(
                "<b>Deploy</b> <code>payments</code> to <i>production</i>? "
                "&lt;img src=x onerror=alert(1)&gt;"
            ),
            parse_mode="HTML",
            reply_markup=json.dumps(keyboard),
        )
        assert sent["ok"] is True
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(**chromium)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 700})
                dialogs: list[str] = []
                page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
                page.goto(sandbox.url + "/")
                page.get_by_role("listitem").filter(has_text="Ann").click()
                bubble = page.locator(".row", has_text="Deploy payments to production?")
                expect(bubble).to_be_visible()
                expect(bubble.locator("strong")).to_have_text("Deploy")
                expect(bubble.locator("code")).to_have_text("payments")
                expect(bubble).to_contain_text("<img src=x onerror=alert(1)>")  # shown, not run
                page.get_by_role("button", name="Approve").click()
                wait_until(lambda: sandbox.stats()["callback_queries"] == 1)
                # A person can also write; the page shows it live.
                page.get_by_label("Message").fill("/status now")
                page.get_by_label("Message").press("Enter")
                expect(page.locator(".row.out", has_text="/status now")).to_be_visible()
                page.screenshot(path=str(SCREENSHOT))
                assert dialogs == []
            finally:
                browser.close()
        updates = sandbox.bot("getUpdates")["result"]
        presses = [update["callback_query"] for update in updates if "callback_query" in update]
        assert [(press["data"], press["from"]["id"]) for press in presses] == [("ap:7:0", 42)]
        assert presses[0]["message"]["message_id"] == sent["result"]["message_id"]
        texts = [update["message"]["text"] for update in updates if "message" in update]
        assert texts == ["/status now"]
