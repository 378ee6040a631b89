"""How a call to Yandex Cloud authenticates, for the chat adapter and the embeddings encoder
alike: a service account's API key (sent as ``Api-Key``) or an IAM token (sent as ``Bearer``);
the key wins when both are given."""

from __future__ import annotations

import dataclasses

from django.utils.translation import gettext_noop

AUTH_HINT = gettext_noop(
    "Check YANDEX_API_KEY, or YANDEX_IAM_TOKEN (IAM tokens live at most 12 hours), and that "
    "the account has the ai.languageModels.user role in the folder."
)


@dataclasses.dataclass(frozen=True)
class YandexAuth:
    """An API key or an IAM token (either may be empty; :attr:`given` says whether one is).
    Neither appears in the ``repr``."""

    api_key: str = dataclasses.field(default="", repr=False)
    iam_token: str = dataclasses.field(default="", repr=False)

    @property
    def given(self) -> bool:
        return bool(self.api_key or self.iam_token)

    @property
    def scheme(self) -> str:
        return "Api-Key" if self.api_key else "Bearer"

    @property
    def credential(self) -> str:
        return self.api_key or self.iam_token

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header's value."""
        return f"{self.scheme} {self.credential}"

    @property
    def secrets(self) -> tuple[str, str]:
        """What to redact from error texts."""
        return (self.api_key, self.iam_token)

    @property
    def sends_folder_header(self) -> bool:
        """Whether calls carry ``x-folder-id``: the docs send it with a user's IAM token and
        tell service accounts (API keys) not to."""
        return not self.api_key
