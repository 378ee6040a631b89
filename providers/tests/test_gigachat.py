from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from providers.base import ChatMessage, ChatRequest, collect
from providers.errors import ProviderAuthError, ProviderBadResponse, ProviderUnavailable
from providers.fakes import GigaChatFake, Script
from providers.fakes.openai import REFUSAL
from providers.gigachat.auth import GigaChatAuth
from providers.tests.conftest import make_gigachat

REQUEST = ChatRequest(messages=(ChatMessage("user", "Привет, ГигаЧат!"),))
CHAT = "/api/v1/chat/completions"
OAUTH = "/api/v2/oauth"


def _auth(fake: GigaChatFake, **kwargs: object) -> GigaChatAuth:
    return GigaChatAuth(
        auth_url=fake.auth_url,
        credentials=fake.credentials,
        scope="GIGACHAT_API_PERS",
        **kwargs,  # type: ignore[arg-type]
    )


async def test_token_is_fetched_once_and_reused_across_chats(gigachat_fake: GigaChatFake) -> None:
    provider = make_gigachat(gigachat_fake)

    for _ in range(3):
        await collect(provider, REQUEST)

    assert gigachat_fake.oauth_calls == 1
    assert len(gigachat_fake.requests_to(CHAT)) == 3


async def test_oauth_call_sends_basic_key_fresh_uuid4_rquid_and_scope(
    gigachat_fake: GigaChatFake,
) -> None:
    gigachat_fake.token_ttl = 30  # inside the 60 s buffer at once: every chat refreshes
    provider = make_gigachat(gigachat_fake)

    await collect(provider, REQUEST)
    await collect(provider, REQUEST)

    calls = gigachat_fake.requests_to(OAUTH)
    assert len(calls) == 2
    assert all(c.headers["authorization"] == f"Basic {gigachat_fake.credentials}" for c in calls)
    rquids = [uuid.UUID(c.headers["rquid"]) for c in calls]
    assert all(r.version == 4 for r in rquids) and rquids[0] != rquids[1]
    assert calls[0].form == {"scope": "GIGACHAT_API_PERS"}


async def test_token_is_refreshed_60_seconds_before_expiry_without_a_401(
    gigachat_fake: GigaChatFake,
) -> None:
    gigachat_fake.token_ttl = 70
    offset = [0.0]
    auth = _auth(gigachat_fake, clock=lambda: time.time() + offset[0])
    provider = make_gigachat(gigachat_fake, auth=auth)

    await collect(provider, REQUEST)
    offset[0] = 15.0  # 55 s left: inside the buffer
    await collect(provider, REQUEST)

    assert gigachat_fake.oauth_calls == 2
    assert len(gigachat_fake.requests_to(CHAT)) == 2  # a 401 and its retry would make 3


async def test_expired_token_gets_401_then_one_refresh_and_the_chat_succeeds(
    gigachat_fake: GigaChatFake,
) -> None:
    gigachat_fake.token_ttl = 0.3
    # A client clock 100 s behind still thinks the token is fresh: only the 401 tells.
    late_clock = _auth(gigachat_fake, refresh_before=0, clock=lambda: time.time() - 100)
    provider = make_gigachat(gigachat_fake, auth=late_clock)
    await collect(provider, REQUEST)
    await asyncio.sleep(0.4)

    answer = await collect(provider, REQUEST)

    assert answer.finish_reason == "stop"
    assert gigachat_fake.oauth_calls == 2
    assert len(gigachat_fake.requests_to(CHAT)) == 3  # ok, 401 "Token has expired", ok


async def test_revoked_token_is_replaced_after_a_401_although_not_yet_expired(
    gigachat_fake: GigaChatFake,
) -> None:
    provider = make_gigachat(gigachat_fake)
    await collect(provider, REQUEST)
    gigachat_fake.revoke_tokens()

    await collect(provider, REQUEST)

    assert gigachat_fake.oauth_calls == 2


async def test_second_401_in_a_row_is_reported_after_exactly_one_refresh(
    gigachat_fake: GigaChatFake,
) -> None:
    gigachat_fake.fail(401, {"status": 401, "message": "Token has expired"}, times=2, path=CHAT)

    with pytest.raises(ProviderAuthError, match="Token has expired"):
        await collect(make_gigachat(gigachat_fake), REQUEST)

    assert gigachat_fake.oauth_calls == 2
    assert len(gigachat_fake.requests_to(CHAT)) == 2


async def test_concurrent_chats_at_expiry_cause_one_oauth_call(gigachat_fake: GigaChatFake) -> None:
    provider = make_gigachat(gigachat_fake)

    answers = await asyncio.gather(*(collect(provider, REQUEST) for _ in range(8)))

    assert all(a.finish_reason == "stop" for a in answers)
    assert gigachat_fake.oauth_calls == 1


@pytest.mark.parametrize("shape", ["tok_exp_ms", "tok_exp_s"])
async def test_tok_exp_token_shapes_are_normalised_to_milliseconds(
    gigachat_fake: GigaChatFake, shape: str
) -> None:
    gigachat_fake.token_format = shape  # type: ignore[assignment]
    provider = make_gigachat(gigachat_fake)

    await collect(provider, REQUEST)
    await collect(provider, REQUEST)

    assert gigachat_fake.oauth_calls == 1  # the expiry was understood, so the token is reused
    token = provider.auth._token
    assert token is not None and abs(token.expires_at_ms / 1000 - time.time() - 1800) < 5


async def test_wrong_authorization_key_says_what_to_check(gigachat_fake: GigaChatFake) -> None:
    with pytest.raises(ProviderAuthError, match="GIGACHAT_CREDENTIALS") as caught:
        await collect(make_gigachat(gigachat_fake, credentials="bm90OnJpZ2h0"), REQUEST)

    assert "credentials doesn't match" in caught.value.message
    assert "bm90OnJpZ2h0" not in caught.value.message


async def test_scope_the_key_does_not_have_is_reported_as_an_auth_error(
    gigachat_fake: GigaChatFake,
) -> None:
    with pytest.raises(ProviderAuthError, match="scope from db"):
        await collect(make_gigachat(gigachat_fake, scope="GIGACHAT_API_CORP"), REQUEST)


async def test_request_sends_content_raw_utf8_and_a_positive_temperature(
    gigachat_fake: GigaChatFake,
) -> None:
    await collect(make_gigachat(gigachat_fake), replace(REQUEST, temperature=0.0))

    sent = gigachat_fake.requests_to(CHAT)[0]
    assert "Привет, ГигаЧат!".encode() in sent.body
    body = sent.json()
    assert body["messages"] == [{"role": "user", "content": "Привет, ГигаЧат!"}]
    assert body["temperature"] == 0.001 and body["stream"] is True
    assert sent.headers["accept"] == "text/event-stream"


async def test_usage_arrives_on_the_last_chunk_and_the_model_has_its_version(
    gigachat_fake: GigaChatFake,
) -> None:
    answer = await collect(make_gigachat(gigachat_fake), REQUEST)

    assert answer.model == "GigaChat-2:2.0.28.2"
    assert answer.usage.output_tokens > 0 and answer.usage.input_tokens > 0


async def test_blacklisted_topic_finishes_as_content_filter_with_the_refusal(
    gigachat_fake: GigaChatFake,
) -> None:
    gigachat_fake.script = Script(finish_reason="content_filter")

    answer = await collect(make_gigachat(gigachat_fake), REQUEST)

    assert answer.text == REFUSAL and answer.finish_reason == "content_filter"


async def test_stream_without_done_crlf_lines_and_ping_comments_is_read_fine(
    gigachat_fake: GigaChatFake,
) -> None:
    gigachat_fake.script = Script(tokens=["Да", "."], omit_done=True, crlf=True, ping=True)

    answer = await collect(make_gigachat(gigachat_fake), REQUEST)

    assert answer.text == "Да." and answer.finish_reason == "stop"


async def test_stream_with_a_json_content_type_is_rejected(gigachat_fake: GigaChatFake) -> None:
    gigachat_fake.script = Script(wrong_content_type=True)

    with pytest.raises(ProviderBadResponse, match="instead of an event stream"):
        await collect(make_gigachat(gigachat_fake), REQUEST)


async def test_model_list_tells_chat_models_from_embedders(gigachat_fake: GigaChatFake) -> None:
    models = {m.id: m.kind for m in await make_gigachat(gigachat_fake).list_models()}

    assert models["GigaChat-2-Max"] == "chat"
    assert models["Embeddings"] == "embedder"


def test_turning_verification_off_is_logged_as_a_warning(
    gigachat_fake: GigaChatFake, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="providers.gigachat"):
        provider = make_gigachat(gigachat_fake, verify_ssl=False)

    assert provider.http.verify is False
    assert "verification is OFF" in caplog.text


@pytest.fixture
def throwaway_ca(tmp_path: Path) -> dict[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "1", "-subj", "/CN=Fake Russian Trusted Root CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.pem", "-days", "1", "-extfile", "san.ext")  # fmt: skip
    return {
        n: str(tmp_path / f) for n, f in [("ca", "ca.pem"), ("cert", "srv.pem"), ("key", "srv.key")]
    }


@pytest.fixture
def tls_gigachat_fake(throwaway_ca: dict[str, str]) -> Iterator[GigaChatFake]:
    fake = GigaChatFake()
    fake.use_tls(throwaway_ca["cert"], throwaway_ca["key"])
    with fake:
        yield fake


async def test_ca_bundle_setting_makes_a_custom_root_ca_trusted(
    tls_gigachat_fake: GigaChatFake, throwaway_ca: dict[str, str]
) -> None:
    provider = make_gigachat(tls_gigachat_fake, ca_bundle=throwaway_ca["ca"])

    answer = await collect(provider, REQUEST)

    assert tls_gigachat_fake.url.startswith("https://")
    assert answer.finish_reason == "stop"


async def test_without_the_ca_bundle_the_connection_fails_closed(
    tls_gigachat_fake: GigaChatFake,
) -> None:
    with pytest.raises(ProviderUnavailable):
        await collect(make_gigachat(tls_gigachat_fake), REQUEST)
    assert tls_gigachat_fake.oauth_calls == 0
