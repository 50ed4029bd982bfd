"""A GGUF chat model run in-process by llama.cpp (llama-cpp-python).

One resident model; weights load on first use or `warm_up()`, and `close()` frees them before
another model is loaded. llama.cpp is not thread-safe, so generations run one at a time (callers
wait on a lock). The chat template is the one stored in the GGUF; `chat_format` overrides it.
Sampling happens inside llama.cpp, not in Python.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from models.base import (
    CancelToken,
    FinishReason,
    GenerationOptions,
    Message,
    ModelInfo,
    until_stop,
)
from models.catalog import GIB, Architecture, available_memory_bytes, memory_estimate
from models.errors import GenerationError, ModelLoadError, ModelNotFound, ModelTooLarge
from models.gguf import GGUFHeaderError, read_metadata, split_parts
from models.native import NativeDecoder, json_grammar

log = logging.getLogger(__name__)

_STATE_FILES_KEPT = 8  # saved prompt caches (a few MB each for small models)


def estimate_memory_bytes(path: Path, meta: dict[str, str], n_ctx: int) -> int:
    """`models.catalog.memory_estimate` for a file: all parts of a split file are weights."""
    weights = sum(p.stat().st_size for p in split_parts(path) if p.exists())
    return memory_estimate(weights, Architecture.from_metadata(meta), n_ctx)


def _gguf_formatter(llm: Any, template: str) -> Any:
    """The GGUF's own Jinja chat template, as llama-cpp-python would render it."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos_id, bos_id = llm.token_eos(), llm.token_bos()
    return Jinja2ChatFormatter(
        template=template,
        eos_token=llm._model.token_get_text(eos_id) if eos_id != -1 else "",
        bos_token=llm._model.token_get_text(bos_id) if bos_id != -1 else "",
        stop_token_ids=[eos_id],
    )


@functools.cache
def _openmp() -> Any:
    """GNU OpenMP (libgomp) when this process has loaded it (llama.cpp's CPU backend built with
    OpenMP, the default with GCC), else None."""
    try:
        library = ctypes.CDLL("libgomp.so.1", mode=getattr(os, "RTLD_NOLOAD", 0))
        pause = library.omp_pause_resource_all
    except (OSError, AttributeError):
        return None
    pause.argtypes = [ctypes.c_int]
    pause.restype = ctypes.c_int
    return pause


@contextlib.contextmanager
def _openmp_released() -> Iterator[None]:
    """Run llama.cpp, then let this thread's OpenMP worker threads go.

    OpenMP keeps a team of workers for every thread that has run a parallel region, for as long
    as that thread lives. Once a long-lived thread (a web server's worker pool) has run llama.cpp,
    its idle team counts against the cores, libgomp stops spinning at barriers and sleeps instead,
    and llama.cpp run from any other thread (the next answer's) goes at under half speed here.
    A soft pause frees the calling thread's team; the next call starts one again (a thread
    start, microseconds).
    """
    try:
        yield
    finally:
        pause = _openmp()
        if pause is not None:
            pause(1)  # omp_pause_soft


def physical_cores() -> int:
    """Physical CPU cores (llama.cpp runs best with one thread per core, not per hyperthread)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cores = set()
            physical = core = ""
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "physical id":
                    physical = value.strip()
                elif key == "core id":
                    core = value.strip()
                    cores.add((physical, core))
            if cores:
                return len(cores)
    except OSError:
        pass
    return max(1, (os.cpu_count() or 2) // 2)


class LlamaRuntime(FinishReason):
    """`ChatModel` over llama-cpp-python."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int | None = None,
        chat_format: str | None = None,
        default_options: GenerationOptions | None = None,
        flash_attn: bool = True,
    ) -> None:
        """Remember what to load; nothing is read yet.

        Args:
            model_path: a .gguf file.
            n_ctx: context window wanted; capped at the model's trained length.
            n_threads: CPU threads; None = physical cores.
            n_gpu_layers: layers offloaded to CUDA/Metal; None = all when the build has a GPU.
            chat_format: a llama-cpp-python chat format name overriding the GGUF's template.
            default_options: sampling used when `stream` gets none.
            flash_attn: llama.cpp's fused attention (as llama-bench uses by default): here it
                evaluates prompts 15-25% faster on CPU (llama.cpp has it for CUDA and Metal too).
        """
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise ModelNotFound(f"no model file at {self.model_path}")
        self._n_ctx = n_ctx
        self._n_threads = n_threads or physical_cores()
        self._n_gpu_layers = n_gpu_layers
        self._chat_format = chat_format
        self._flash_attn = flash_attn
        self.default_options = default_options or GenerationOptions()
        super().__init__()  # last_finish_reason
        self._llm: Any = None
        # Known once loaded (see warm_up): where it runs, its trained window, its template.
        self._gpu_layers = 0
        self._trained = 0
        self._template = "from the GGUF"
        self._native: NativeDecoder | None = None  # set when the GGUF's template is used
        self._formatter: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Load the weights now (idempotent, thread-safe)."""
        with self._load_lock:
            if self._llm is not None:
                return
            import llama_cpp

            gpu_layers = self._n_gpu_layers
            if gpu_layers is None:
                gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0
            meta = self._read_metadata()
            arch = meta.get("general.architecture", "llama")
            trained = int(meta.get(f"{arch}.context_length", 0) or 0)
            n_ctx = min(self._n_ctx, trained) if trained else self._n_ctx
            if gpu_layers == 0:  # on a GPU the weights live in VRAM; llama.cpp reports OOM itself
                self._check_memory(meta, n_ctx)
            chat_format = self._chat_format
            if chat_format is None and not meta.get("tokenizer.chat_template"):
                # Without a template llama-cpp-python would guess silently; say what we chose.
                log.warning("%s has no chat template: using ChatML", self.model_path.name)
                chat_format = "chatml"
            self._template = chat_format or "from the GGUF"
            try:
                # A window beyond the trained length only produces garbage, and costs memory.
                llm = llama_cpp.Llama(
                    model_path=str(self.model_path),
                    n_ctx=n_ctx,
                    n_threads=self._n_threads,
                    n_gpu_layers=gpu_layers,
                    chat_format=self._chat_format,
                    flash_attn=self._flash_attn,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise ModelLoadError(
                    f"llama.cpp could not load {self.model_path.name}: {exc}"
                ) from exc
            self._gpu_layers = gpu_layers
            self._trained = trained or llm.n_ctx()
            if self._chat_format is None and meta.get("tokenizer.chat_template"):
                self._formatter = _gguf_formatter(llm, meta["tokenizer.chat_template"])
                self._native = NativeDecoder(llm)
            self._llm = llm
            log.info(
                "loaded %s (n_ctx=%d, threads=%d)",
                self.model_path.name,
                llm.n_ctx(),
                self._n_threads,
            )

    def prime(self, messages: list[Message], state_dir: Path | None = None) -> int:
        """Have the cache hold the prompt prefix every request that opens with `messages` shares.

        The system prompt is the same for every question, so after this the first question only
        evaluates its own tokens, as later ones do. With `state_dir`, the evaluated cache is kept
        in a file there (named by the model file, the settings that shape the cache, llama.cpp's
        version and the tokens) and a later start loads it instead of evaluating again; only the
        newest `_STATE_FILES_KEPT` files stay.

        Returns:
            Tokens now cached for that prefix (0 where the runtime has no native decoder).
        """
        llm = self._model
        with self._generate_lock, _openmp_released():
            if self._native is None:
                return 0
            tokens = self._shared_prefix(llm, messages)
            if len(tokens) < 2 or self._native.cached_tokens[: len(tokens)] == tokens:
                return len(tokens)
            path = state_dir / f"{self._state_key(tokens)}.kv" if state_dir else None
            if path is not None and self._native.load(path, tokens):
                with contextlib.suppress(OSError):  # its age only orders the pruning
                    path.touch()
                log.info("read the cache of %d prompt tokens from %s", len(tokens), path)
                return len(tokens)
            self._native.prefill(tokens)
            if path is not None:
                self._save_state(path)
            return len(tokens)

    def _shared_prefix(self, llm: Any, messages: list[Message]) -> list[int]:
        """The tokens of the rendered prompt that do not depend on what follows `messages`."""
        prompts = [
            self._prompt_tokens(llm, [*messages, {"role": "user", "content": probe}])
            for probe in ("a", "b")
        ]
        shared = 0
        while shared < min(map(len, prompts)) and prompts[0][shared] == prompts[1][shared]:
            shared += 1
        return list(prompts[0][:shared])

    def _prompt_tokens(self, llm: Any, messages: list[Message]) -> list[int]:
        """`messages` rendered with the GGUF's template, as tokens."""
        prompt = self._formatter(messages=messages)
        return list(
            llm.tokenize(
                prompt.prompt.encode("utf-8"), add_bos=not prompt.added_special, special=True
            )
        )

    def _state_key(self, tokens: list[int]) -> str:
        import llama_cpp

        stat = self.model_path.stat()
        parts = [
            str(self.model_path.resolve()),
            str(stat.st_size),
            str(stat.st_mtime_ns),
            str(self._model.n_ctx()),
            str(self._gpu_layers),
            str(self._flash_attn),
            llama_cpp.__version__,
            ",".join(map(str, tokens)),
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]

    def _save_state(self, path: Path) -> None:
        """Write the cache to `path` (atomically) and drop the oldest state files."""
        assert self._native is not None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.part")
            if self._native.save(partial):
                partial.replace(path)
            else:
                partial.unlink(missing_ok=True)
            files = sorted(path.parent.glob("*.kv"), key=lambda f: f.stat().st_mtime)
            for old in files[:-_STATE_FILES_KEPT]:
                old.unlink(missing_ok=True)
        except OSError as exc:  # a read-only or full disk only costs the next start a prefill
            log.warning("could not keep the prompt cache in %s: %s", path.parent, exc)

    def _read_metadata(self) -> dict[str, str]:
        """The GGUF's metadata, from its header (no weights, no vocabulary, no llama.cpp context:
        a vocab-only load took 0.2 s for the bundled model and warned about a context length)."""
        try:
            return read_metadata(self.model_path)
        except (GGUFHeaderError, OSError) as exc:
            raise ModelLoadError(f"{self.model_path.name} cannot be read: {exc}") from exc

    def _check_memory(self, meta: dict[str, str], n_ctx: int) -> None:
        """Refuse, with the numbers, a model that would not fit in the memory available now."""
        needed = estimate_memory_bytes(self.model_path, meta, n_ctx)
        available = available_memory_bytes()
        if available and needed > available:
            raise ModelTooLarge(
                f"{self.model_path.name} needs about {needed / GIB:.1f} GiB at a context of "
                f"{n_ctx} tokens, but only {available / GIB:.1f} GiB of memory is available: "
                "choose a smaller model or quantization, or a shorter context"
            )

    def close(self) -> None:
        """Free the weights and the context (waits for a running generation)."""
        with self._load_lock, self._generate_lock:
            if self._llm is not None:
                self._native = None
                self._llm.close()
                self._llm = None

    @property
    def _model(self) -> Any:
        if self._llm is None:
            self.warm_up()
        return self._llm

    # -- ChatModel ---------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        """The loaded context window in tokens."""
        return int(self._model.n_ctx())

    @property
    def info(self) -> ModelInfo:
        """Name, path, window and placement of the loaded model."""
        llm = self._model
        return ModelInfo(
            name=self.model_path.stem,  # the file the user knows; GGUF names are often cryptic
            path=str(self.model_path),
            backend="llama.cpp",
            context_length=int(llm.n_ctx()),
            trained_context_length=self._trained,
            gpu_layers=self._gpu_layers,
            threads=self._n_threads,
            chat_template=self._template,
        )

    @property
    def last_prompt_length(self) -> int:
        """Tokens in the last generation's prompt, cached ones included (0 before any, or
        where the runtime has no native decoder)."""
        if self._native is None:
            return 0
        return self._native.reused_tokens + self._native.evaluated_tokens

    def count_tokens(self, text: str) -> int:
        """Tokens with the model's own tokenizer (no BOS)."""
        if not text:
            return 0
        return len(self._model.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(
        self,
        messages: list[Message],
        options: GenerationOptions | None = None,
        *,
        cancel: CancelToken | None = None,
    ) -> Iterator[str]:
        """Yield answer text as llama.cpp produces it; one generation at a time per model.

        Raises:
            GenerationError: llama.cpp failed (e.g. the prompt exceeds the window).
        """
        opts = options or self.default_options
        llm = self._model
        with self._generate_lock, _openmp_released():
            self._ended(None)
            if cancel is not None and cancel.is_set():
                return
            if self._native is not None:
                tokens = self._prompt_tokens(llm, messages)
                ended = yield from until_stop(
                    self._native.generate(tokens, opts, cancel=cancel), opts.stop
                )
                self._ended(ended or "stop")  # None: a stop sequence ended it
                return
            try:
                grammar = None
                if opts.json_schema is not None:
                    from llama_cpp.llama_grammar import LlamaGrammar

                    grammar = LlamaGrammar.from_string(
                        json_grammar(opts.json_schema), verbose=False
                    )
                chunks = llm.create_chat_completion(
                    messages=messages,
                    grammar=grammar,
                    stream=True,
                    max_tokens=opts.max_tokens,
                    temperature=opts.temperature,
                    top_p=opts.top_p,
                    repeat_penalty=opts.repeat_penalty,
                    seed=opts.seed,
                    stop=list(opts.stop) or None,
                )
                for chunk in chunks:
                    if cancel is not None and cancel.is_set():
                        break
                    choice = chunk["choices"][0]
                    delta = choice["delta"].get("content")
                    if delta:
                        yield delta
                    self._ended(choice.get("finish_reason") or None)
            except ValueError as exc:  # llama-cpp-python raises ValueError for window overflow
                raise GenerationError(str(exc)) from exc
