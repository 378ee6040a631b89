from __future__ import annotations

import io
import threading
import time

import httpx
from django.core.management import call_command


def test_fake_llm_server_serves_all_three_fakes_and_prints_their_environment() -> None:
    out = io.StringIO()
    thread = threading.Thread(
        target=call_command, args=("fake_llm_server",), kwargs={"duration": 3.0, "stdout": out}
    )
    thread.start()
    deadline = time.monotonic() + 5
    while "OPENAI_MODEL" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    env = dict(
        line.split("=", 1)
        for line in out.getvalue().splitlines()
        if "=" in line and "#" not in line
    )

    models = httpx.get(f"{env['OPENAI_BASE_URL']}/models", timeout=2).json()
    token = httpx.post(
        env["GIGACHAT_AUTH_URL"],
        headers={
            "Authorization": f"Basic {env['GIGACHAT_CREDENTIALS']}",
            "RqUID": "6f0b1291-c7f3-43c6-bb2e-9f3efb2dc98e",
        },
        data={"scope": "GIGACHAT_API_PERS"},
        timeout=2,
    ).json()
    thread.join(10)

    assert env["YANDEX_BASE_URL"].startswith("http://127.0.0.1:")
    assert models["data"][0]["id"] == env["OPENAI_MODEL"]
    assert token["access_token"] and token["expires_at"] > time.time() * 1000
    assert not thread.is_alive()
