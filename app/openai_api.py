"""Quipu as an OpenAI-compatible server, beside the page: `/v1/models`, `/v1/chat/completions`.

Existing clients (the `openai` package, editors, other chat UIs) point at http://HOST:PORT/v1.
Two models are listed: `quipu` answers from the library (its sources come back in an extra
`sources` field, on the last chunk when streaming) and `quipu-chat` chats without the documents.
An extra `files` field in the request limits retrieval to those documents, and the client's
system messages are added to Quipu's system prompt. The request's sampling
(`max_tokens`, `temperature`, `top_p`, `seed`, `stop`) applies to its answer, and `usage` counts its
tokens (in a stream, on a last chunk when `stream_options.include_usage` asks). `response_format`
`json_object` or `json_schema` makes the model write JSON (following the schema, if one is given)
through a llama.cpp grammar; `tools`, `functions` and `logprobs` are refused with a 400, not
silently ignored. When the page has passwords, requests need one of the same `user:password`
pairs, as a Bearer token or HTTP Basic.
Every error under /v1 (a malformed body, a wrong password, an unknown route) comes back in
OpenAI's `{"error": {...}}` shape, so clients show its message (`error_handlers`).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.messages import describe
from app.shapes import citation_json, unverified_figures
from app.streaming import Part, in_background, split_answer
from app.wiring import Services
from models.base import GenerationOptions
from rag.types import Answer

RAG_MODEL = "quipu"
CHAT_MODEL = "quipu-chat"


class ChatMessage(BaseModel):
    """One OpenAI chat message (text content only)."""

    model_config = ConfigDict(extra="ignore")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text, also from the list-of-parts form."""
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    """OpenAI's `stream_options`: with `include_usage`, a last chunk carries the token counts."""

    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class JsonSchemaFormat(BaseModel):
    """OpenAI's `response_format.json_schema`: a name and the schema the answer follows."""

    model_config = ConfigDict(extra="ignore")

    name: str = "answer"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")


class ResponseFormat(BaseModel):
    """OpenAI's `response_format`: `text`, `json_object` (any JSON object), or `json_schema`."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchemaFormat | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")  # llama.cpp's json_object form

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        given = self.json_schema is not None and self.json_schema.schema_
        if self.type == "json_schema" and not given:
            raise ValueError("type json_schema needs json_schema.schema, the JSON Schema to follow")
        return self

    def schema_text(self) -> str | None:
        """The JSON Schema the answer must follow, as JSON text; None for free text."""
        if self.type == "text":
            return None
        if self.type == "json_schema" and self.json_schema is not None:
            return json.dumps(self.json_schema.schema_)
        return json.dumps(self.schema_ or {"type": "object"})


class ChatRequest(BaseModel):
    """The fields of an OpenAI chat completion request that Quipu uses; others are ignored.

    Sampling fields left out keep the model's own settings (the page's Models tab)."""

    model_config = ConfigDict(extra="ignore")

    model: str = RAG_MODEL
    messages: list[ChatMessage]
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="Newer max_tokens.")
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = None
    n: int = Field(1, ge=1, le=1, description="One answer per request.")
    files: list[str] | None = Field(None, description="Quipu extra: only these documents.")
    stop: str | list[str] | None = Field(None, description="Up to 4 sequences that end it.")
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    # Asked for, these would change what the answer is; Quipu refuses them rather than ignore.
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> list[str] | None:
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > 4:
            raise ValueError("at most 4 stop sequences")
        if any(not stop for stop in stops):
            raise ValueError("a stop sequence cannot be empty")
        return stops or None

    def options(self, defaults: GenerationOptions) -> GenerationOptions:
        """The model's sampling, with what this request sets."""
        given = {
            "max_tokens": self.max_completion_tokens or self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "seed": self.seed,
            "stop": tuple(self.stop) if isinstance(self.stop, list) else None,
            "json_schema": self.response_format.schema_text() if self.response_format else None,
        }
        return defaults.model_copy(update={k: v for k, v in given.items() if v is not None})


def _authorized(request: Request, credentials: list[tuple[str, str]]) -> bool:
    if not credentials:
        return True
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
    else:
        return False
    return any(
        secrets.compare_digest(given, f"{user}:{password}") for user, password in credentials
    )


def build_router(services: Services, credentials: list[tuple[str, str]]) -> APIRouter:
    """The /v1 routes, answering with `services`."""
    router = APIRouter(prefix="/v1")

    def check(request: Request) -> None:
        if not _authorized(request, credentials):
            raise HTTPException(
                status_code=401,
                detail="this Quipu needs a password: send user:password as the API key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @router.get("/models")
    def models(request: Request) -> dict[str, Any]:
        check(request)
        created = int(time.time())
        return {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": created, "owned_by": "quipu"}
                for name in (RAG_MODEL, CHAT_MODEL)
            ],
        }

    @router.post("/chat/completions", response_model=None)
    def chat(body: ChatRequest, request: Request) -> JSONResponse | StreamingResponse:
        check(request)
        if body.model not in (RAG_MODEL, CHAT_MODEL):
            return _error(
                404,
                f"unknown model {body.model!r}: use {RAG_MODEL} or {CHAT_MODEL}",
                param="model",
                code="model_not_found",
            )
        for field, what in (
            ("tools", "tools (function calling)"),
            ("functions", "functions (function calling)"),
            ("logprobs", "logprobs"),
            ("top_logprobs", "top_logprobs"),
        ):
            if getattr(body, field):
                return _error(400, f"{what} are not supported by Quipu", param=field)
        turns = [m for m in body.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
            return _error(400, "the last message must be the user's question")
        history = [{"role": m.role, "content": m.text()} for m in turns[:-1]]
        # The client's system (or "developer") messages: its own instructions for the answer.
        told = [m.text() for m in body.messages if m.role in ("system", "developer")]
        asked = [m.text() for m in turns if m.role == "user"]  # figures they give are known
        cancel = threading.Event()  # set when a streaming client goes away
        try:
            parts = services.answerer.ask(
                turns[-1].text(),
                history,
                use_documents=body.model == RAG_MODEL,
                file_names=body.files or None,
                cancel=cancel,
                options=body.options(services.model.default_options),
                instructions="\n\n".join(t for t in told if t.strip()),
            )
            first = next(parts)  # retrieval errors surface here, before any byte is sent
        except Exception as exc:
            return _error(400, describe(exc))
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        if body.stream:
            usage = body.stream_options is not None and body.stream_options.include_usage
            return StreamingResponse(
                _events(completion_id, body.model, first, parts, cancel, asked, usage=usage),
                media_type="text/event-stream",
            )
        text, answer = _collect(first, parts)
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "length" if answer and answer.cut else "stop",
                    }
                ],
                "usage": _usage(answer),
                "sources": [citation_json(c) for c in answer.citations] if answer else [],
                "unverified": unverified_figures(answer, *asked) if answer else [],
            }
        )

    return router


_API_PREFIX = "/v1/"
Handler = Callable[[Request, Any], Awaitable[Response]]


def error_handlers() -> dict[Any, Handler]:
    """FastAPI exception handlers: OpenAI's error shape under /v1, FastAPI's own elsewhere."""

    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        if not request.url.path.startswith(_API_PREFIX):
            return await request_validation_exception_handler(request, exc)
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "invalid request: the body is not valid JSON")
        first = errors[0].get("loc", ()) if errors else ()
        param = ".".join(str(part) for part in first if part != "body") or None
        return _error(400, "invalid request: " + "; ".join(map(_problem, errors)), param=param)

    async def refused(request: Request, exc: StarletteHTTPException) -> Response:
        if not request.url.path.startswith(_API_PREFIX):
            return await http_exception_handler(request, exc)
        kind = "authentication_error" if exc.status_code == 401 else "invalid_request_error"
        message = str(exc.detail)
        if exc.status_code in (404, 405):  # a route or method that is not here
            message = (
                f"{message}: {request.method} {request.url.path} "
                "(Quipu serves GET /v1/models and POST /v1/chat/completions)"
            )
        return _error(exc.status_code, message, kind=kind, headers=exc.headers)

    return {RequestValidationError: invalid, StarletteHTTPException: refused}


def _problem(error: Any) -> str:
    """One pydantic error as 'where: what', e.g. 'messages.0.role: Field required'."""
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))


def _error(
    status: int,
    message: str,
    *,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": param, "code": code}},
        status_code=status,
        headers=headers,
    )


def _usage(answer: Answer | None) -> dict[str, int]:
    """OpenAI's token counts: the prompt the model read and the answer it wrote (0 and 0 for an
    answer given without the model, such as "nothing relevant")."""
    prompt = answer.prompt_tokens if answer else 0
    completion = answer.timing.tokens if answer and answer.timing else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _collect(first: Part, parts: Iterator[Part]) -> tuple[str, Answer | None]:
    text, answer = split_answer([first, *parts])
    return (answer.text if answer else text), answer


def _events(
    completion_id: str,
    model: str,
    first: Part,
    parts: Iterator[Part],
    cancel: threading.Event,
    asked: list[str],
    *,
    usage: bool = False,
) -> Iterator[str]:
    """Server-sent events in OpenAI's chunk format; sources (and the figures they do not hold)
    ride on the last chunk. With `usage`, as OpenAI, every chunk has a `usage` of null and one
    more chunk, with no choices, carries the token counts."""
    created = int(time.time())

    def chunk(delta: dict[str, Any] | None, finish: str | None, **extra: Any) -> str:
        payload = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "finish_reason": finish}],
            **({"usage": None} if usage else {}),
            **extra,
        }
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""}, None)
    try:
        # Each chunk carries what was generated while the previous one was being sent.
        for batch in in_background(lambda: itertools.chain([first], parts), cancel=cancel):
            text, answer = split_answer(batch)
            if text:
                yield chunk({"content": text}, None)
            if answer is not None:
                yield chunk(
                    {},
                    "length" if answer.cut else "stop",  # as OpenAI: the token limit ended it
                    sources=[citation_json(c) for c in answer.citations],
                    unverified=unverified_figures(answer, *asked),
                )
                if usage:
                    yield chunk(None, None, usage=_usage(answer))
    except Exception as exc:  # the stream has started: report in-band, as OpenAI servers do
        yield f"data: {json.dumps({'error': {'message': describe(exc)}})}\n\n"
    yield "data: [DONE]\n\n"
