"""A chat model behind an OpenAI-compatible server (llama.cpp's llama-server,
`python -m llama_cpp.server`, vLLM, Ollama): the same `ChatModel` interface as `LlamaRuntime`.

Streaming uses the server's server-sent events. Failures become `GenerationError`s that say what
to check, within seconds: connecting is limited to `connect_timeout_s`, and the wait for the next
piece of an answer to `read_timeout_s`. Tokens are estimated (about 3 characters each, on the safe
side), because the OpenAI API has no tokenizer endpoint.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from models.base import CancelToken, FinishReason, GenerationOptions, Message, ModelInfo
from models.errors import GenerationError

_CHARS_PER_TOKEN = 3


class RemoteChatModel(FinishReason):
    """Generation delegated to an OpenAI-compatible `/v1` endpoint."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        n_ctx: int = 4096,
        default_options: GenerationOptions | None = None,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 60.0,
    ) -> None:
        """Args:
        base_url: the server's API root, e.g. http://127.0.0.1:8080/v1.
        api_key: sent as a Bearer token when given.
        model: the server's model id; None = the first one its /v1/models lists.
        n_ctx: the window to budget prompts for (the server's own may be larger).
        default_options: sampling when `stream` gets none.
        connect_timeout_s: how long to wait for a connection.
        read_timeout_s: how long to wait for the next piece of an answer.
        """
        self.base_url = base_url.rstrip("/")
        self._model_name = model
        self._n_ctx = n_ctx
        self.default_options = default_options or GenerationOptions()
        super().__init__()  # last_finish_reason
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(read_timeout_s, connect=connect_timeout_s)
        self._client = httpx.Client(headers=headers, timeout=self._timeout, trust_env=False)
        self._lock = threading.Lock()

    # -- what is running ------------------------------------------------------------------------

    @property
    def model_path(self) -> Path:
        """Where the model lives, shown like a local model's path."""
        return Path(f"{self.base_url}#{self._model_name or ''}")

    @property
    def context_length(self) -> int:
        """Tokens budgeted for prompt and answer together."""
        return self._n_ctx

    @property
    def info(self) -> ModelInfo:
        """Name, server and window."""
        return ModelInfo(
            name=self._model_name or "(the server's default model)",
            path=self.base_url,
            backend="OpenAI-compatible server",
            context_length=self._n_ctx,
            trained_context_length=self._n_ctx,
            gpu_layers=0,
            threads=0,
            chat_template="the server's",
        )

    def count_tokens(self, text: str) -> int:
        """An upper estimate: the server's tokenizer is not reachable through the OpenAI API."""
        return len(text) // _CHARS_PER_TOKEN + 1

    # -- server calls ---------------------------------------------------------------------------

    def _explain(self, exc: Exception) -> GenerationError:
        if isinstance(exc, httpx.ConnectError):
            return GenerationError(
                f"cannot reach the LLM server at {self.base_url} ({exc}); is it running?"
            )
        if isinstance(exc, httpx.TimeoutException):
            return GenerationError(f"the LLM server at {self.base_url} did not answer in time")
        if isinstance(exc, httpx.HTTPStatusError):
            status = exc.response.status_code
            if status in (401, 403):
                return GenerationError(f"the LLM server at {self.base_url} refused the API key")
            if status == 404:
                return GenerationError(
                    f"{self.base_url} has no OpenAI-compatible API here (HTTP 404); "
                    "the URL usually ends in /v1"
                )
            return GenerationError(
                f"the LLM server at {self.base_url} answered HTTP {status}: "
                f"{exc.response.text[:200]}"
            )
        return GenerationError(f"the LLM server at {self.base_url} failed: {exc}")

    def list_models(self) -> list[str]:
        """Model ids the server offers (its /v1/models).

        Raises:
            GenerationError: the server cannot be reached or is not OpenAI-compatible.
        """
        try:
            response = self._client.get(f"{self.base_url}/models")
            response.raise_for_status()
            data = response.json().get("data", [])
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise self._explain(exc) from exc
        return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]

    def warm_up(self) -> None:
        """Pick the server's first model when none was named (no error if the server is down)."""
        if self._model_name is None:
            try:
                names = self.list_models()
            except GenerationError:
                return  # said again, clearly, at the first question
            self._model_name = names[0] if names else None

    def stream(
        self,
        messages: list[Message],
        options: GenerationOptions | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text as the server streams it; stop when `cancel` is set.

        Raises:
            GenerationError: the server is down, slow, refuses, or is not OpenAI-compatible.
        """
        opts = options or self.default_options
        self.warm_up()
        self._ended(None)
        body: dict[str, Any] = {
            "messages": messages,
            "stream": True,
            "max_tokens": opts.max_tokens,
            "temperature": opts.temperature,
            "top_p": opts.top_p,
            "seed": opts.seed,
        }
        if opts.stop:
            body["stop"] = list(opts.stop)
        if opts.json_schema is not None:
            # OpenAI's JSON mode with the schema beside it: llama.cpp's server and
            # llama-cpp-python's enforce the schema; vLLM makes any JSON object.
            schema = json.loads(opts.json_schema)
            body["response_format"] = {"type": "json_object", "schema": schema}
        if self._model_name:
            body["model"] = self._model_name
        try:
            with self._client.stream(
                "POST", f"{self.base_url}/chat/completions", json=body
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    response.raise_for_status()
                for line in response.iter_lines():
                    if cancel is not None and cancel.is_set():
                        self._ended("cancelled")
                        return
                    delta, finish = _event(line)
                    if delta is None:
                        return  # [DONE]
                    if delta:
                        yield delta
                    self._ended(finish or self.last_finish_reason)
        except httpx.HTTPError as exc:
            raise self._explain(exc) from exc

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()


def _event(line: str) -> tuple[str | None, str | None]:
    """(text, finish reason) of one server-sent event line: text "" for other lines and None at
    the end of the stream; the reason when the line gives one."""
    if not line.startswith("data:"):
        return "", None
    payload = line[5:].strip()
    if payload == "[DONE]":
        return None, None
    try:
        event = json.loads(payload)
    except ValueError:
        return "", None
    choice = (event.get("choices") or [{}])[0]
    finish = choice.get("finish_reason")
    return str((choice.get("delta") or {}).get("content") or ""), str(finish) if finish else None
