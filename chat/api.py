"""Conversations, messages (JSON or Server-Sent Events), export and prompt templates over the
JSON API: thin endpoints over services and selectors."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal

from asgiref.sync import async_to_sync
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.utils.text import slugify
from ninja import Router, Status
from ninja.pagination import paginate

from chat import selectors, services
from chat.events import (
    ChatEvent,
    DoneEvent,
    application_error_event,
    database_unavailable_events,
)
from chat.export import (
    conversation_export_json,
    conversation_export_markdown,
    conversation_export_pdf,
)
from chat.models import Conversation, Message, PromptTemplate
from chat.schemas import (
    ConversationCreateIn,
    ConversationOut,
    ConversationPatchIn,
    MessageOut,
    MessageSendIn,
    PromptTemplateIn,
    PromptTemplateOut,
    PromptTemplatePatchIn,
    PromptTemplateRenderIn,
    PromptTemplateRenderOut,
    ProviderOut,
    StopOut,
)
from core.errors import DATABASE_UNAVAILABLE, ApplicationError
from core.ratelimit import rate_limit_request
from core.schemas import Pagination, errors
from providers.registry import default_provider_name, provider_statuses

logger = logging.getLogger(__name__)

router = Router(tags=["chat"])
_ERRORS = errors(400, 403, 404, 409)
# Asking is rate-limited and counts against the daily quotas.
_ASK_ERRORS = errors(400, 403, 404, 409, 429)


@router.get("/chat/providers", response={200: list[ProviderOut], **_ERRORS})
def list_providers(request: HttpRequest) -> list[dict[str, Any]]:
    default = default_provider_name()
    return [{**s.__dict__, "default": s.name == default} for s in provider_statuses()]


@router.get("/conversations", response={200: list[ConversationOut], **_ERRORS})
@paginate(Pagination)
def list_conversations(request: HttpRequest, q: str = "") -> Any:
    return selectors.conversation_list_for_user(user=request.user, query=q)


@router.post("/conversations", response={201: ConversationOut, **_ERRORS})
def create_conversation(request: HttpRequest, payload: ConversationCreateIn) -> Status[Any]:
    data = payload.dict()
    data["params"] = payload.params.dict(exclude_none=True) if payload.params else {}
    return Status(201, services.conversation_create(owner=request.user, **data))


@router.get("/conversations/{conversation_id}", response={200: ConversationOut, **_ERRORS})
def get_conversation(request: HttpRequest, conversation_id: int) -> Conversation:
    return selectors.conversation_get_for_user(conversation_id=conversation_id, user=request.user)


@router.patch("/conversations/{conversation_id}", response={200: ConversationOut, **_ERRORS})
def update_conversation(
    request: HttpRequest, conversation_id: int, payload: ConversationPatchIn
) -> Conversation:
    conversation = selectors.conversation_get_for_user(
        conversation_id=conversation_id, user=request.user
    )
    data = payload.dict(exclude_unset=True)
    if payload.params is not None:
        data["params"] = payload.params.dict(exclude_none=True)
    return services.conversation_update(conversation=conversation, user=request.user, **data)


@router.delete("/conversations/{conversation_id}", response={204: None, **_ERRORS})
def delete_conversation(request: HttpRequest, conversation_id: int) -> Status[None]:
    services.conversation_delete(
        conversation=selectors.conversation_get_for_user(
            conversation_id=conversation_id, user=request.user
        )
    )
    return Status(204, None)


@router.get(
    "/conversations/{conversation_id}/messages", response={200: list[MessageOut], **_ERRORS}
)
@paginate(Pagination)
def list_messages(request: HttpRequest, conversation_id: int) -> Any:
    conversation = selectors.conversation_get_for_user(
        conversation_id=conversation_id, user=request.user
    )
    return selectors.message_list_for_conversation(conversation=conversation)


# One event of the stream: its type, and its payload as a JSON ``data:`` line.
_SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {
            "type": "string",
            "enum": [
                "start",
                "sources",
                "delta",
                "citations",
                "usage",
                "error",
                "done",
                "grounding",
            ],
        },
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "data"],
}


def _sse(event: ChatEvent) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"


async def _sse_stream(events: AsyncIterator[ChatEvent]) -> AsyncIterator[str]:
    try:
        async for event in events:
            yield _sse(event)
    except ApplicationError as exc:  # raised before the answer started: nothing was saved
        yield _sse(application_error_event(exc))
        done: DoneEvent = {"type": "done", "message_id": None, "status": "failed"}
        yield _sse(done)
    except DATABASE_UNAVAILABLE:  # the database restarted or dropped the connection
        logger.warning("database unavailable during a streamed answer", exc_info=True)
        for event in database_unavailable_events():
            yield _sse(event)


@router.post(
    "/conversations/{conversation_id}/messages",
    response={200: MessageOut, **_ASK_ERRORS},
    summary="Ask a question: one JSON answer, or with stream=true an event stream",
    description=(
        "With `stream: true` the answer is `text/event-stream`: `start`, `sources`, `delta` "
        "(text pieces), `citations`, `usage` (or `error`) and `done` events, each a JSON "
        "`data:` line; after `done`, a complete answer given passages gets a `grounding` "
        "event (`message_id`, `supported_share`, `unsupported`: the `start`/`end` character "
        "offsets of the sentences no passage supports), stored as the message's `grounding`. "
        "The answer is saved as it streams and finishes even if the client goes away. When "
        "the documents do not answer the question (its best passage is weak, or none is "
        "found), no provider is asked: the answer says so and cites the closest passages, "
        "and the `usage` event's `finish_reason` is `no_answer`."
    ),
    openapi_extra={
        "responses": {
            200: {"content": {"text/event-stream": {"schema": _SSE_EVENT}}},
        }
    },
)
def send_message(
    request: HttpRequest, conversation_id: int, payload: MessageSendIn
) -> HttpResponseBase | Message:
    rate_limit_request("chat", request)
    # NotFound as a 404 before any event; what the answer reads is read again in its turn.
    selectors.conversation_get_for_user(
        conversation_id=conversation_id, user=request.user, prefetch=False
    )
    options = payload.service_options()
    if payload.stream:
        events = services.message_send(
            user=request.user, conversation_id=conversation_id, **options
        )
        response = StreamingHttpResponse(_sse_stream(events), content_type="text/event-stream")
        response["Cache-Control"] = "no-store"
        response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
        return response
    message_id = async_to_sync(services.message_answer)(
        user=request.user, conversation_id=conversation_id, **options
    )
    return selectors.message_get_for_user(message_id=message_id, user=request.user)


@router.post("/conversations/{conversation_id}/stop", response={200: StopOut, **_ERRORS})
def stop_answer(request: HttpRequest, conversation_id: int) -> dict[str, bool]:
    stopped = async_to_sync(services.answer_stop)(
        user=request.user, conversation_id=conversation_id
    )
    return {"stopped": stopped}


@router.get(
    "/conversations/{conversation_id}/export",
    response={200: None, **_ERRORS},
    openapi_extra={
        "responses": {
            200: {
                "description": "The conversation as a file, in the format asked for.",
                "content": {
                    "text/markdown": {"schema": {"type": "string"}},
                    "application/json": {"schema": {"type": "object"}},
                    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
                },
            }
        }
    },
)
def export_conversation(
    request: HttpRequest,
    conversation_id: int,
    format: Literal["markdown", "json", "pdf"] = "markdown",
) -> HttpResponse:
    conversation = selectors.conversation_get_for_user(
        conversation_id=conversation_id, user=request.user
    )
    # Russian titles keep their letters (RFC 6266 filename*), not an empty ASCII slug.
    name = slugify(conversation.title, allow_unicode=True)[:60] or f"conversation-{conversation.pk}"
    if format == "json":
        body = json.dumps(conversation_export_json(conversation), ensure_ascii=False, indent=2)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        extension = "json"
    elif format == "pdf":
        response = HttpResponse(
            conversation_export_pdf(conversation), content_type="application/pdf"
        )
        extension = "pdf"
    else:
        body = conversation_export_markdown(conversation)
        response = HttpResponse(body, content_type="text/markdown; charset=utf-8")
        extension = "md"
    response["Content-Disposition"] = content_disposition_header(True, f"{name}.{extension}") or ""
    return response


@router.get("/prompt-templates", response={200: list[PromptTemplateOut], **_ERRORS})
def list_prompt_templates(request: HttpRequest) -> Any:
    return selectors.prompt_template_list_for_user(user=request.user)


@router.post("/prompt-templates", response={201: PromptTemplateOut, **_ERRORS})
def create_prompt_template(request: HttpRequest, payload: PromptTemplateIn) -> Status[Any]:
    template = services.prompt_template_create(
        owner=request.user,
        name=payload.name,
        body=payload.body,
        params=payload.params.dict(exclude_none=True) if payload.params else {},
    )
    return Status(201, template)


@router.patch("/prompt-templates/{template_id}", response={200: PromptTemplateOut, **_ERRORS})
def update_prompt_template(
    request: HttpRequest, template_id: int, payload: PromptTemplatePatchIn
) -> PromptTemplate:
    template = selectors.prompt_template_get_for_user(
        template_id=template_id, user=request.user, edit=True
    )
    params = payload.params.dict(exclude_none=True) if payload.params else None
    return services.prompt_template_update(
        template=template, name=payload.name, body=payload.body, params=params
    )


@router.delete("/prompt-templates/{template_id}", response={204: None, **_ERRORS})
def delete_prompt_template(request: HttpRequest, template_id: int) -> Status[None]:
    selectors.prompt_template_get_for_user(
        template_id=template_id, user=request.user, edit=True
    ).delete()
    return Status(204, None)


@router.post(
    "/prompt-templates/{template_id}/render", response={200: PromptTemplateRenderOut, **_ERRORS}
)
def render_prompt_template(
    request: HttpRequest, template_id: int, payload: PromptTemplateRenderIn
) -> dict[str, Any]:
    template = selectors.prompt_template_get_for_user(template_id=template_id, user=request.user)
    text = services.prompt_template_render(template=template, values=payload.values)
    return {"text": text, "params": template.params}
