"""Wire schemas of the chat. The websocket validates its messages with the same schemas as the
HTTP API (``MessageSendIn`` inside ``ChatSocketIn``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import TypeAdapter

from core.schemas import BodyIn
from documents.reasons import translate_reason


class GenerationParamsIn(BodyIn):
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=32_000)
    top_k: int | None = Field(None, ge=1, le=50, description="Passages given to the model")


class ConversationCreateIn(BodyIn):
    title: str = Field("", max_length=200)
    knowledge_base_ids: list[int] = Field(default_factory=list)
    document_ids: list[int] = Field(
        default_factory=list, description="Empty: every document of the bases"
    )
    provider: str = Field("", max_length=50, description="Empty: the default provider")
    model: str = Field("", max_length=200, description="Empty: the provider's default")
    params: GenerationParamsIn | None = None
    system_prompt: str = Field("", max_length=20_000)
    template_id: int | None = None


class ConversationPatchIn(BodyIn):
    title: str | None = Field(None, max_length=200)
    knowledge_base_ids: list[int] | None = None
    document_ids: list[int] | None = None
    provider: str | None = Field(None, max_length=50)
    model: str | None = Field(None, max_length=200)
    params: GenerationParamsIn | None = None
    system_prompt: str | None = Field(None, max_length=20_000)


class ConversationOut(Schema):
    id: int
    title: str
    provider: str
    model: str
    params: dict[str, Any]
    knowledge_base_ids: list[int]
    document_ids: list[int]
    system_prompt: str
    template_id: int | None
    message_count: int | None = None
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_knowledge_base_ids(obj: Any) -> list[int]:
        return [kb.pk for kb in obj.knowledge_bases.all()]

    @staticmethod
    def resolve_document_ids(obj: Any) -> list[int]:
        return [d.pk for d in obj.documents.all()]


class CitationOut(Schema):
    number: int
    chunk_id: int | None
    document_id: int | None
    document_title: str
    file_name: str
    page: int | None
    score: float
    quote: str


class GroundingSpanOut(Schema):
    start: int
    end: int


class GroundingOut(Schema):
    """The grounding check of a complete answer given passages: ``unsupported``, the sentences
    (character offsets into ``content``) no passage given to the model supports;
    ``supported_share``, supported / ``counted`` sentences (None: none counted)."""

    supported_share: float | None
    counted: int
    supported: int
    unsupported: list[GroundingSpanOut]


class MessageOut(Schema):
    id: int
    role: str
    content: str
    status: str
    error: str
    provider: str
    model: str
    params: dict[str, Any]
    prompt_tokens: int | None
    completion_tokens: int | None
    first_token_ms: int | None
    total_ms: int | None
    finish_reason: str = Field(
        "",
        description=(
            "How a complete answer ended: the provider's finish (`stop`, `length`, "
            "`content_filter`, `other`), or `no_answer` when the documents did not answer and "
            "no provider was asked (the answer says so and cites the closest passages). Empty: "
            "not finished (streaming, stopped or failed)."
        ),
    )
    created_at: datetime
    citations: list[CitationOut]
    grounding: GroundingOut | None = Field(
        None, description="The grounding check (None: not checked), as the `grounding` event."
    )

    @staticmethod
    def resolve_citations(obj: Any) -> list[Any]:
        return list(obj.citations.all())

    @staticmethod
    def resolve_error(obj: Any) -> str:
        """A reason written with no request (a server restart) is English: in the reader's
        language when it is a known message; others were written in the asker's language."""
        error = obj.get("error") if isinstance(obj, dict) else obj.error
        return translate_reason(error or "")


class MessageSendIn(BodyIn):
    """A question. ``stream``: answer as ``text/event-stream``. ``provider``, ``model`` and
    ``params`` change the conversation for this and the later answers."""

    content: str = Field("", max_length=20_000)
    regenerate: bool = False
    stream: bool = False
    provider: str | None = Field(None, max_length=50)
    model: str | None = Field(None, max_length=200)
    params: GenerationParamsIn | None = None

    def service_options(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "regenerate": self.regenerate,
            "provider": self.provider,
            "model": self.model,
            "params": self.params.dict(exclude_none=True) if self.params else None,
        }


class SocketSendIn(MessageSendIn):
    type: Literal["send"]


class SocketRegenerateIn(BodyIn):
    """Answer the last question again (the last answer is replaced)."""

    type: Literal["regenerate"]


class SocketStopIn(BodyIn):
    type: Literal["stop"]


SocketIn = SocketSendIn | SocketRegenerateIn | SocketStopIn
ChatSocketIn = Annotated[SocketIn, Field(discriminator="type")]
chat_socket_adapter: TypeAdapter[SocketIn] = TypeAdapter(ChatSocketIn)


class StopOut(Schema):
    stopped: bool


class PromptTemplateIn(BodyIn):
    name: str = Field(min_length=1, max_length=100)
    body: str = Field(min_length=1, max_length=20_000)
    params: GenerationParamsIn | None = None


class PromptTemplatePatchIn(BodyIn):
    name: str | None = Field(None, min_length=1, max_length=100)
    body: str | None = Field(None, min_length=1, max_length=20_000)
    params: GenerationParamsIn | None = None


class PromptTemplateOut(Schema):
    id: int
    name: str
    body: str
    params: dict[str, Any]
    placeholders: list[str]
    is_global: bool

    @staticmethod
    def resolve_placeholders(obj: Any) -> list[str]:
        from chat.services import template_placeholders

        return template_placeholders(body=obj.body)

    @staticmethod
    def resolve_is_global(obj: Any) -> bool:
        return obj.owner_id is None


class PromptTemplateRenderIn(BodyIn):
    values: dict[str, str] = Field(default_factory=dict)


class PromptTemplateRenderOut(Schema):
    text: str
    params: dict[str, Any]


class ProviderOut(Schema):
    name: str
    label: str
    configured: bool
    default_model: str
    how_to_configure: str
    default: bool
