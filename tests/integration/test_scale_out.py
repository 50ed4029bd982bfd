"""Beyond one laptop: a real `chroma run` and a real `python -m llama_cpp.server` on loopback.

The same CLI flow (ingest, search, ask) runs once on the embedded defaults and once through the
two servers; the library moves between them with export/import; a dead, silent or wrong server
gives a clear message in seconds while the app keeps running.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, free_port, run_cli, start_app, stop_process

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIN = Path(sys.executable).parent


def _wait(url: str, process: subprocess.Popen[bytes], log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"server did not start:\n{log.read_text()[-3000:]}")


@contextmanager
def _server(command: list[str], ready: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        _wait(ready, process, log)
        yield process
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`chroma run` from the chromadb package, with its own folder."""
    folder = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    command = [str(BIN / "chroma"), "run", "--path", str(folder / "db"), "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    url = f"http://127.0.0.1:{port}"
    with _server(command, f"{url}/api/v2/heartbeat", folder / "chroma.log"):
        yield url


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` serving the bundled GGUF."""
    from models.bundled import bundled_model_path

    folder = tmp_path_factory.mktemp("llama-server")
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_model_path())]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]
    url = f"http://127.0.0.1:{port}/v1"
    with _server(command, f"{url}/models", folder / "llama.log"):
        yield url


@pytest.fixture(params=["embedded", "servers"])
def backend_flags(request: pytest.FixtureRequest) -> list[str]:
    if request.param == "embedded":
        return []
    chroma = request.getfixturevalue("chroma_server")
    llm = request.getfixturevalue("llama_server")
    # A fresh collection per test keeps the shared server's libraries apart.
    return ["--chroma-url", chroma, "--llm-url", llm]


def test_ingest_search_ask_work_the_same_on_servers(backend_flags, aurora_pdf, tmp_path):
    env_collection = f"t{int(time.time() * 1000)}"
    os.environ["QUIPU_STORE__COLLECTION"] = env_collection
    try:
        added = run_cli("ingest", str(aurora_pdf), *backend_flags, data_dir=tmp_path)
        assert added.returncode == 0, added.stderr
        assert "ok" in added.stdout
        found = run_cli(
            "search",
            "Who started the Aurora project?",
            "--json",
            "--k",
            "3",
            *backend_flags,
            data_dir=tmp_path,
        )
        assert found.returncode == 0, found.stderr
        hits = json.loads(found.stdout.splitlines()[0])
        assert hits[0]["file"] == "aurora-report.pdf" and hits[0]["page"] == 3
        asked = run_cli(
            "ask",
            "Who started the Aurora project, and where?",
            *backend_flags,
            data_dir=tmp_path,
        )
        assert asked.returncode == 0, asked.stderr
        assert "aurora-report.pdf" in asked.stdout  # the sources footer
        if backend_flags:
            listed = run_cli("models", "list", "--json", *backend_flags, data_dir=tmp_path)
            assert listed.returncode == 0, listed.stderr
            assert [m["active"] for m in json.loads(listed.stdout)] == [True]  # the server's one
            # Nothing was written to the data dir's embedded store: the library is the server's.
            assert not (tmp_path / "chroma").exists()
    finally:
        os.environ.pop("QUIPU_STORE__COLLECTION", None)


def test_the_llm_server_says_when_the_token_limit_ended_an_answer(llama_server):
    from models.base import GenerationOptions
    from models.remote import RemoteChatModel

    model = RemoteChatModel(llama_server)
    try:
        asked = [{"role": "user", "content": "Write a long story about a lighthouse."}]
        pieces = list(model.stream(asked, GenerationOptions(max_tokens=4, temperature=0.0)))
        assert pieces and model.last_finish_reason == "length"
        asked = [{"role": "user", "content": "Say just: yes."}]
        list(model.stream(asked, GenerationOptions(max_tokens=64, temperature=0.0)))
        assert model.last_finish_reason == "stop"
    finally:
        model.close()


def test_the_llm_server_writes_json_that_follows_the_schema(llama_server):
    from models.base import GenerationOptions
    from models.remote import RemoteChatModel

    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    model = RemoteChatModel(llama_server)
    try:
        asked = [{"role": "user", "content": "Which city is the capital of France?"}]
        options = GenerationOptions(max_tokens=64, temperature=0.0, json_schema=json.dumps(schema))
        assert set(json.loads("".join(model.stream(asked, options)))) == {"city"}
    finally:
        model.close()


def test_library_moves_from_embedded_into_a_chroma_server(chroma_server, aurora_pdf, tmp_path):
    embedded = tmp_path / "laptop"
    assert run_cli("ingest", str(aurora_pdf), data_dir=embedded).returncode == 0
    export = tmp_path / "library.jsonl"
    out = run_cli("library", "export", str(export), data_dir=embedded)
    assert out.returncode == 0, out.stderr
    assert "1 documents written" in out.stdout
    collection = f"moved{int(time.time() * 1000)}"
    server = ["--chroma-url", chroma_server]
    env = {"QUIPU_STORE__COLLECTION": collection}
    os.environ.update(env)
    try:
        first = run_cli("library", "import", str(export), *server, data_dir=tmp_path / "team")
        assert first.returncode == 0, first.stderr
        assert "1 documents imported" in first.stdout
        # The PDF came along, so the team's cited pages open too.
        (copy,) = (tmp_path / "team" / "files").glob("*.pdf")
        assert copy.read_bytes() == aurora_pdf.read_bytes()
        again = run_cli("library", "import", str(export), *server, data_dir=tmp_path / "team")
        assert "0 documents imported, 1 already" in again.stdout
        listed = run_cli("library", "--json", *server, data_dir=tmp_path / "team")
        (doc,) = json.loads(listed.stdout)
        assert doc["file"] == "aurora-report.pdf"
        found = run_cli("search", "glacier drones", "--json", *server, data_dir=tmp_path / "team")
        assert json.loads(found.stdout.splitlines()[0])[0]["page"] == 3
    finally:
        os.environ.pop("QUIPU_STORE__COLLECTION", None)


@pytest.mark.parametrize("where", ["embedded", "server"])
def test_a_new_versions_vectors_are_read_a_page_at_a_time_from_either_store(
    where, request, real_embedder, aurora_pdf, tmp_path
):
    from rag.ingest import Ingestor
    from rag.store import ChunkStore

    place = (
        {"url": request.getfixturevalue("chroma_server")}
        if where == "server"
        else {"path": tmp_path / "chroma"}
    )
    name = f"v{int(time.time() * 1000)}"  # a fresh library on the shared server
    store = ChunkStore(**place, name=name, embedder_id=real_embedder.model_id)
    try:
        Ingestor(real_embedder, store).ingest([aurora_pdf])
        (document,) = store.documents()
        pairs = store.document_chunks(document.file_id)
        assert len(pairs) > 2

        by_text = store.vectors_by_text([document.file_id, "no-such-document"], page_size=1)

        assert sorted(by_text) == sorted(chunk.indexed_text for chunk, _ in pairs)
        for chunk, vector in pairs:
            assert np.array_equal(by_text[chunk.indexed_text], np.asarray(vector, np.float32))
    finally:
        store.close()


@contextmanager
def _silent_server() -> Iterator[str]:
    """Accepts connections and never answers: a hung LLM server."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


@pytest.mark.ui
def test_a_failing_llm_server_gives_a_clear_message_and_the_app_keeps_running(aurora_pdf, tmp_path):
    from gradio_client import Client

    dead = f"http://127.0.0.1:{free_port()}/v1"
    env = dict(os.environ, PYTHONPATH=str(ROOT), QUIPU_MODEL__LLM_TIMEOUT_S="3")
    with start_app(tmp_path / "dead", "--llm-url", dead, env=env) as app:
        client = Client(app.url, verbose=False)
        started = time.monotonic()
        with pytest.raises(Exception, match="cannot reach the LLM server"):
            client.predict("Hello?", False, "", api_name="/chat")
        assert time.monotonic() - started < 10
        # Still up: the library side answers, and so does the page.
        assert client.predict("anything", 3, "", api_name="/search") == []
        with urllib.request.urlopen(app.url, timeout=5) as page:
            assert page.status == 200
    with (
        _silent_server() as silent,
        start_app(tmp_path / "silent", "--llm-url", silent, env=env) as app,
    ):
        client = Client(app.url, verbose=False)
        started = time.monotonic()
        with pytest.raises(Exception, match="did not answer in time"):
            client.predict("Hello?", False, "", api_name="/chat")
        assert time.monotonic() - started < 15
        wrong = app.url.rstrip("/") + "/nothing-here"  # an HTTP server, but not an LLM API
    with start_app(tmp_path / "wrong", "--llm-url", wrong, env=env) as app:
        client = Client(app.url, verbose=False)
        with pytest.raises(Exception, match="(no OpenAI-compatible API|cannot reach)"):
            client.predict("Hello?", False, "", api_name="/chat")


@pytest.mark.ui
def test_official_openai_client_streams_an_answer_with_sources(running_app, aurora_pdf):
    from gradio_client import Client, handle_file
    from openai import OpenAI

    Client(running_app.url, verbose=False).predict(
        [handle_file(str(aurora_pdf))], api_name="/ingest"
    )
    client = OpenAI(base_url=running_app.url.rstrip("/") + "/v1", api_key="unused")
    assert {m.id for m in client.models.list()} == {"quipu", "quipu-chat"}
    stream = client.chat.completions.create(
        model="quipu",
        messages=[{"role": "user", "content": "Who started the Aurora project, and where?"}],
        stream=True,
    )
    text, sources, unverified = "", None, None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        extra = getattr(chunk, "model_extra", None) or {}
        if extra.get("sources"):
            sources, unverified = extra["sources"], extra["unverified"]
    assert text.strip()
    assert sources, "the last chunk carries the sources"
    given = " ".join(s["text"] for s in sources).replace(",", "")
    assert isinstance(unverified, list)
    assert not [f for f in unverified if f.strip("$%").replace(",", "") in given]
    assert sources[0]["file"] == "aurora-report.pdf" and sources[0]["page"] == 3
    whole = client.chat.completions.create(
        model="quipu",
        messages=[{"role": "user", "content": "Who started the Aurora project, and where?"}],
    )
    assert whole.choices[0].message.content.strip()
    assert (whole.model_extra or {}).get("sources")
    assert isinstance((whole.model_extra or {}).get("unverified"), list)
    assert whole.choices[0].finish_reason == "stop"  # the model ended it
    story = client.chat.completions.create(
        model="quipu-chat",
        messages=[{"role": "user", "content": "Write a very long story about a lighthouse."}],
    )
    assert story.choices[0].finish_reason == "length"  # the app's 96-token limit ended it


@pytest.mark.ui
def test_openai_api_honours_the_requests_sampling(running_app):
    """max_tokens, temperature, top_p and seed are the request's when it sets them."""
    from openai import BadRequestError, OpenAI

    client = OpenAI(base_url=running_app.url.rstrip("/") + "/v1", api_key="unused")
    story = [{"role": "user", "content": "Write a very long story about a lighthouse."}]

    def answer(**sampling) -> tuple[str, str]:
        done = client.chat.completions.create(model="quipu-chat", messages=story, **sampling)
        return done.choices[0].message.content, done.choices[0].finish_reason

    short, why = answer(max_tokens=6)
    assert why == "length" and 0 < len(short.split()) <= 6  # the app's own limit is 96
    newer, why = answer(max_completion_tokens=6)
    assert why == "length" and newer == short
    # The app answers at temperature 0 here; asked for 1.5, the seed decides the words.
    first = answer(max_tokens=24, temperature=1.5, top_p=1.0, seed=1)[0]
    assert answer(max_tokens=24, temperature=1.5, top_p=1.0, seed=1)[0] == first
    assert answer(max_tokens=24, temperature=1.5, top_p=1.0, seed=2)[0] != first
    for wrong, param in (({"temperature": 3}, "temperature"), ({"n": 2}, "n")):
        with pytest.raises(BadRequestError) as refused:
            answer(**wrong)
        assert refused.value.param == param


@pytest.mark.ui
def test_openai_api_json_answers_and_refuses_what_it_cannot_do(running_app):
    """`response_format` json_schema and json_object give JSON (the schema's keys); tools,
    logprobs and a json_schema without its schema are refused with the field named."""
    from openai import BadRequestError, OpenAI

    client = OpenAI(base_url=running_app.url.rstrip("/") + "/v1", api_key="unused")
    asked = [{"role": "user", "content": "Which city is the capital of France?"}]
    city = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    for model in ("quipu-chat", "quipu"):  # quipu: JSON whether or not a passage is relevant
        done = client.chat.completions.create(
            model=model,
            messages=asked,
            response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": city}},
        )
        assert set(json.loads(done.choices[0].message.content or "")) == {"city"}
    done = client.chat.completions.create(
        model="quipu-chat", messages=asked, response_format={"type": "json_object"}
    )
    assert isinstance(json.loads(done.choices[0].message.content or ""), dict)
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    refused_requests = (
        ({"tools": [tool]}, "tools", "tools (function calling) are not supported"),
        ({"logprobs": True}, "logprobs", "logprobs are not supported"),
        ({"response_format": {"type": "json_schema"}}, "response_format", "json_schema.schema"),
    )
    for wrong, param, says in refused_requests:
        with pytest.raises(BadRequestError) as refused:
            client.chat.completions.create(model="quipu-chat", messages=asked, **wrong)
        assert refused.value.param == param and says in refused.value.message, refused.value


@pytest.mark.ui
def test_openai_api_stop_sequences_token_usage_and_the_clients_system_message(running_app):
    """`stop` ends the answer before the sequence; `usage` counts the prompt and the answer,
    also on the last chunk of a stream that asks for it (`stream_options.include_usage`); the
    client's system message reaches the model (its prompt grows by it)."""
    from openai import BadRequestError, OpenAI

    client = OpenAI(base_url=running_app.url.rstrip("/") + "/v1", api_key="unused")
    story = [{"role": "user", "content": "Write a very long story about a lighthouse."}]
    whole = client.chat.completions.create(model="quipu-chat", messages=story, max_tokens=40)
    text = whole.choices[0].message.content or ""
    words = text.split()
    assert len(words) > 8, text
    stop = " " + words[len(words) // 2]  # the app answers at temperature 0: the same words
    stopped = client.chat.completions.create(
        model="quipu-chat", messages=story, max_tokens=40, stop=[stop, "never-in-a-story"]
    )
    assert stopped.choices[0].message.content == text[: text.index(stop)]
    assert stopped.choices[0].finish_reason == "stop"

    usage = whole.usage
    assert usage is not None and usage.completion_tokens == 40  # the limit ended it
    assert usage.prompt_tokens > 10 and usage.total_tokens == usage.prompt_tokens + 40
    assert stopped.usage is not None and stopped.usage.completion_tokens < 40
    chunks = list(
        client.chat.completions.create(
            model="quipu-chat",
            messages=story,
            max_tokens=40,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].choices == [] and chunks[-1].usage == usage
    assert all(c.usage is None for c in chunks[:-1])
    system = {"role": "system", "content": "Answer like a pirate, in rhymes, and be brief."}
    told = client.chat.completions.create(
        model="quipu-chat", messages=[system, *story], max_tokens=4
    )
    assert told.usage is not None and told.usage.prompt_tokens >= usage.prompt_tokens + 8
    with pytest.raises(BadRequestError) as refused:
        client.chat.completions.create(model="quipu-chat", messages=story, stop=list("abcde"))
    assert refused.value.param == "stop" and "at most 4" in refused.value.message


@pytest.mark.ui
def test_openai_api_errors_come_in_openai_shape_with_a_message_that_says_what_is_wrong(
    running_app,
):
    import httpx
    from openai import BadRequestError, NotFoundError, OpenAI

    base = running_app.url.rstrip("/") + "/v1"
    client = OpenAI(base_url=base, api_key="unused", max_retries=0)
    with pytest.raises(BadRequestError) as missing_role:
        client.chat.completions.create(model="quipu", messages=[{"content": "Hi"}])  # type: ignore[misc,list-item]
    assert "messages.0.role: Field required" in missing_role.value.message
    assert missing_role.value.param == "messages.0.role"
    with pytest.raises(NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    assert unknown.value.code == "model_not_found" and "quipu" in unknown.value.message

    def error(response: httpx.Response) -> dict[str, object]:
        body = response.json()
        assert set(body) == {"error"}, body  # not FastAPI's {"detail": ...}
        return body["error"]

    broken = httpx.post(
        base + "/chat/completions", content=b"{", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert error(broken)["message"] == "invalid request: the body is not valid JSON"
    wrong_type = httpx.post(base + "/chat/completions", json={"messages": "Hi"})
    assert wrong_type.status_code == 400 and "messages:" in str(error(wrong_type)["message"])
    nowhere = httpx.get(base + "/embeddings")
    assert nowhere.status_code == 404
    assert "POST /v1/chat/completions" in str(error(nowhere)["message"])
    assert httpx.delete(base + "/models").status_code == 405
    # Gradio's own routes keep FastAPI's errors, which its client expects.
    assert "detail" in httpx.get(running_app.url.rstrip("/") + "/no-such-page").json()


@pytest.mark.ui
def test_openai_api_needs_the_password_when_the_page_does(aurora_pdf, tmp_path):
    from openai import AuthenticationError, OpenAI

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    with start_app(tmp_path, "--auth", "ana:s3cret-pass", env=env) as app:
        base = app.url.rstrip("/") + "/v1"
        with pytest.raises(AuthenticationError) as refused:
            OpenAI(base_url=base, api_key="wrong").models.list()
        assert refused.value.type == "authentication_error"
        assert "user:password" in refused.value.message
        models = OpenAI(base_url=base, api_key="ana:s3cret-pass").models.list()
        assert "quipu" in {m.id for m in models}
