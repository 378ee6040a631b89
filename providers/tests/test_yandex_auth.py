"""Yandex Cloud authentication, written once for the chat adapter and the encoder."""

from __future__ import annotations

import pytest

from providers.errors import ProviderError
from providers.yandex.auth import YandexAuth
from providers.yandex.chat import YandexGPTProvider
from providers.yandex.encoder import YandexEncoder

BASE_URL = "https://llm.api.cloud.yandex.net"


def test_an_api_key_is_sent_as_api_key_without_the_folder_header() -> None:
    auth = YandexAuth(api_key="AQVN-key", iam_token="t1.iam")

    assert auth.authorization == "Api-Key AQVN-key"
    assert not auth.sends_folder_header


def test_an_iam_token_is_sent_as_bearer_with_the_folder_header() -> None:
    auth = YandexAuth(iam_token="t1.iam")

    assert auth.authorization == "Bearer t1.iam"
    assert auth.sends_folder_header
    assert not YandexAuth().given


def test_neither_secret_appears_in_the_repr() -> None:
    text = repr(YandexAuth(api_key="AQVN-key", iam_token="t1.iam"))

    assert "AQVN-key" not in text and "t1.iam" not in text


@pytest.mark.parametrize(
    ("api_key", "iam_token", "authorization"),
    [("AQVN-key", "", "Api-Key AQVN-key"), ("", "t1.iam", "Bearer t1.iam")],
)
def test_the_chat_adapter_and_the_encoder_authenticate_alike(
    api_key: str, iam_token: str, authorization: str
) -> None:
    chat = YandexGPTProvider(
        base_url=BASE_URL, folder_id="b1gfolder", api_key=api_key, iam_token=iam_token
    )
    encoder = YandexEncoder(
        base_url=BASE_URL, folder_id="b1gfolder", api_key=api_key, iam_token=iam_token
    )

    assert chat.headers()["Authorization"] == encoder._auth.authorization == authorization
    assert ("x-folder-id" in chat.headers()) == encoder._auth.sends_folder_header


def test_both_refuse_to_start_without_a_key_or_a_token() -> None:
    with pytest.raises(ProviderError, match="Yandex embeddings need an API key"):
        YandexEncoder(base_url=BASE_URL, folder_id="b1gfolder")
    with pytest.raises(ProviderError, match="YandexGPT needs an API key"):
        YandexGPTProvider(base_url=BASE_URL, folder_id="b1gfolder")
