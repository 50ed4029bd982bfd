"""Token generation straight on llama.cpp's C API (through llama-cpp-python's ctypes bindings).

llama-cpp-python's `create_chat_completion` copies the whole vocabulary's logits into numpy and
builds its candidate array in Python for every token; with a small model that costs a quarter of
the speed. Here the sampler chain (repetition penalty, top-k, top-p, min-p, temperature, seeded
draw) runs inside llama.cpp on the context's own logits, and Python only turns each token into
text. With the launcher's small C helper (`models/top_k.py`), only the top candidates are
handed to the chain, instead of llama.cpp copying the whole vocabulary into its candidate array
for every token. The KV cache keeps the tokens of the previous request: a new prompt that starts
the same way (a follow-up in the same conversation) only evaluates what is new. `prefill`
evaluates a prefix ahead of any request (the system prompt, at start-up), and `save`/`load` keep
that cache in a file (llama.cpp's sequence state), so a later start reads it instead of
evaluating it again.
A JSON schema in the options adds llama.cpp's grammar sampler, checked against each pick.
"""

from __future__ import annotations

import codecs
import ctypes
import functools
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

from models import top_k
from models.base import CancelToken, GenerationOptions
from models.errors import GenerationError

_PENALTY_LAST_N = 64  # llama-cpp-python's default window for the repetition penalty
_TOP_K = 40
# Candidates kept before the penalty. The penalty looks every candidate up in a hash map, which
# over the whole vocabulary (49k for SmolLM2) cost 250-350 us a token here, against 60-90 us
# with this cut first. It changes no result: the penalty only lowers the logits of at most
# `_PENALTY_LAST_N` distinct tokens (penalty >= 1), so the top `_TOP_K` after it (and so the
# greedy pick) always lie within the top `_TOP_K + _PENALTY_LAST_N` before it.
_PREFILTER_K = _TOP_K + _PENALTY_LAST_N
_MIN_P = 0.05
_PIECE_BYTES = 256


@functools.lru_cache(maxsize=16)
def json_grammar(schema: str) -> str:
    """llama.cpp grammar (GBNF) that admits only JSON following `schema`, a JSON Schema as text.

    Raises:
        GenerationError: the schema uses what the converter does not know.
    """
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        return json_schema_to_gbnf(schema)
    except Exception as exc:  # the converter raises assertions, KeyErrors, ... on what it lacks
        raise GenerationError(f"this JSON schema is not supported: {exc}") from exc


class NativeDecoder:
    """Prompt tokens in, text pieces out, for one loaded `llama_cpp.Llama` (not thread-safe)."""

    _check_first = True  # JSON: try the free pick against the grammar first (False: tests only)

    def __init__(self, llm: Any, *, n_batch: int = 512) -> None:
        """Args: a loaded Llama (only its context, model and tokenizer are used); batch size."""
        import llama_cpp

        self._lib = llama_cpp
        self._ctx = llm._ctx.ctx
        self._vocab = llama_cpp.llama_model_get_vocab(llm._model.model)
        self._n_ctx = int(llm.n_ctx())
        self._n_vocab = int(llm.n_vocab())
        self._n_batch = n_batch
        self._past: list[int] = []  # the tokens whose keys/values are in the cache, in order
        self.reused_tokens = 0  # prompt tokens the last request found in the cache
        self.evaluated_tokens = 0  # prompt tokens the last request had to evaluate
        self._piece = ctypes.create_string_buffer(_PIECE_BYTES)
        self._one = (llama_cpp.llama_token * 1)()
        # For JSON answers (`_sample_within`): the vocabulary as candidates, made on first use.
        self._table: Any = None
        self._ids: Any = None
        self._array: Any = None
        self._check = (llama_cpp.llama_token_data * 1)()
        # Free text: the chain gets the top `_PREFILTER_K` candidates from the C helper, when
        # the launcher could build it (else llama.cpp fills its array with the vocabulary).
        self._top_k = top_k.load()
        self._best = (llama_cpp.llama_token_data * _PREFILTER_K)()
        self._best_array = llama_cpp.llama_token_data_array(self._best, _PREFILTER_K, -1, False)
        self._best_pointer = ctypes.pointer(self._best_array)

    def reset(self) -> None:
        """Forget the cached tokens (after another user of the context touched it)."""
        self._lib.llama_memory_clear(self._lib.llama_get_memory(self._ctx), True)
        self._past = []

    @property
    def cached_tokens(self) -> list[int]:
        """The tokens whose keys and values are in the cache, in order."""
        return list(self._past)

    def prefill(self, tokens: Sequence[int]) -> None:
        """Evaluate `tokens` into the cache (keeping what is there already), generating nothing.

        Raises:
            GenerationError: llama.cpp failed.
        """
        self._evaluate(tokens)

    def save(self, path: Path) -> bool:
        """Write the cache and its tokens to `path`; False if llama.cpp could not."""
        tokens = (self._lib.llama_token * len(self._past))(*self._past)
        written = self._lib.llama_state_seq_save_file(
            self._ctx, str(path).encode(), 0, tokens, len(self._past)
        )
        return bool(written)

    def load(self, path: Path, tokens: Sequence[int]) -> bool:
        """Replace the cache with the one saved at `path`, if it holds exactly `tokens`.

        Returns False, with an empty cache, for a missing, damaged or different file.
        """
        self.reset()
        if not path.is_file() or not tokens or len(tokens) >= self._n_ctx:
            return False
        found = (self._lib.llama_token * self._n_ctx)()
        count = ctypes.c_size_t(0)
        read = self._lib.llama_state_seq_load_file(
            self._ctx, str(path).encode(), 0, found, self._n_ctx, ctypes.byref(count)
        )
        if not read or list(found[: count.value]) != list(tokens):
            self.reset()
            return False
        self._past = list(tokens)
        return True

    def _sampler(self, options: GenerationOptions) -> Any:
        lib = self._lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        add = lib.llama_sampler_chain_add
        add(chain, lib.llama_sampler_init_top_k(_PREFILTER_K))
        penalties = lib.llama_sampler_init_penalties(
            self._n_vocab, _PENALTY_LAST_N, options.repeat_penalty, 0.0, 0.0
        )
        add(chain, penalties)
        if options.temperature <= 0:
            add(chain, lib.llama_sampler_init_greedy())
        else:
            add(chain, lib.llama_sampler_init_top_k(_TOP_K))
            add(chain, lib.llama_sampler_init_top_p(options.top_p, 1))
            add(chain, lib.llama_sampler_init_min_p(_MIN_P, 1))
            add(chain, lib.llama_sampler_init_temp(options.temperature))
            add(chain, lib.llama_sampler_init_dist(options.seed & 0xFFFFFFFF))
        return chain  # like llama-cpp-python, the penalty sees generated tokens only

    def _grammar(self, options: GenerationOptions) -> Any:
        """llama.cpp's grammar sampler for the options' JSON schema, or None for free text."""
        if options.json_schema is None:
            return None
        grammar = json_grammar(options.json_schema).encode()
        sampler = self._lib.llama_sampler_init_grammar(self._vocab, grammar, b"root")
        if not sampler:
            raise GenerationError("llama.cpp could not use the grammar of this JSON schema")
        return sampler

    def _candidates(self) -> Any:
        """The whole vocabulary with the last logits, as llama.cpp's candidate array (pointer)."""
        import numpy as np

        lib = self._lib
        if self._table is None:
            layout = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
            assert layout.itemsize == ctypes.sizeof(lib.llama_token_data)
            self._table = np.zeros(self._n_vocab, layout)
            self._ids = np.arange(self._n_vocab, dtype=np.int32)
            data = self._table.ctypes.data_as(ctypes.POINTER(lib.llama_token_data))
            self._array = lib.llama_token_data_array(data, self._n_vocab, -1, False)
        logits = lib.llama_get_logits_ith(self._ctx, -1)
        self._table["id"] = self._ids  # the samplers reorder the table in place
        self._table["logit"] = np.ctypeslib.as_array(logits, shape=(self._n_vocab,))
        self._table["p"] = 0.0
        self._array.size, self._array.selected, self._array.sorted = self._n_vocab, -1, False
        return ctypes.byref(self._array)

    def _sample(self, chain: Any) -> int:
        """The chain's pick (and accept) from the last logits, as `llama_sampler_sample`."""
        lib = self._lib
        if self._top_k is None:
            return int(lib.llama_sampler_sample(chain, self._ctx, -1))
        best = self._best_array
        logits = lib.llama_get_logits_ith(self._ctx, -1)
        best.size = self._top_k(logits, self._n_vocab, len(self._best), self._best)
        best.selected, best.sorted = -1, False
        lib.llama_sampler_apply(chain, self._best_pointer)
        token = int(self._best[best.selected].id)
        lib.llama_sampler_accept(chain, token)
        return token

    def _sample_within(self, chain: Any, grammar: Any) -> int:
        """The chain's pick if the grammar allows it, else its pick among the tokens the grammar
        allows. Checking one token is cheap; masking the whole vocabulary cost 13 ms a token
        here (2.6 times the decode), so it is only done when the free pick breaks the grammar,
        as llama.cpp's own common sampler does."""
        lib = self._lib
        lib.llama_sampler_apply(chain, self._candidates())
        token = int(self._array.data[self._array.selected].id)
        self._check[0] = lib.llama_token_data(token, 0.0, 0.0)
        check = lib.llama_token_data_array(self._check, 1, -1, False)
        lib.llama_sampler_apply(grammar, ctypes.byref(check))
        if self._check[0].logit == float("-inf") or not self._check_first:
            candidates = self._candidates()
            lib.llama_sampler_apply(grammar, candidates)
            lib.llama_sampler_apply(chain, candidates)
            token = int(self._array.data[self._array.selected].id)
        if not lib.llama_vocab_is_eog(self._vocab, token):  # the answer ends there: no accept
            lib.llama_sampler_accept(grammar, token)
        lib.llama_sampler_accept(chain, token)
        return token

    def _evaluate(self, tokens: Sequence[int]) -> None:
        """Bring the cache to `tokens`: keep the common prefix, decode the rest in batches."""
        lib = self._lib
        keep = 0
        limit = min(len(self._past), len(tokens) - 1)  # the last token is always decoded anew
        while keep < limit and self._past[keep] == tokens[keep]:
            keep += 1
        if not lib.llama_memory_seq_rm(lib.llama_get_memory(self._ctx), -1, keep, -1):
            self.reset()
            keep = 0
        self._past = self._past[:keep]
        self.reused_tokens, self.evaluated_tokens = keep, len(tokens) - keep
        rest = (lib.llama_token * (len(tokens) - keep))(*tokens[keep:])
        size = ctypes.sizeof(lib.llama_token)
        for start in range(0, len(rest), self._n_batch):
            count = min(self._n_batch, len(rest) - start)
            pointer = ctypes.cast(
                ctypes.addressof(rest) + start * size, ctypes.POINTER(lib.llama_token)
            )
            if lib.llama_decode(self._ctx, lib.llama_batch_get_one(pointer, count)) != 0:
                self.reset()
                raise GenerationError("llama.cpp could not evaluate the prompt")
            self._past.extend(tokens[keep + start : keep + start + count])

    def generate(
        self,
        tokens: Sequence[int],
        options: GenerationOptions,
        *,
        cancel: CancelToken | None = None,
    ) -> Generator[str, None, str]:
        """Yield the text of each generated token (UTF-8 split across tokens is joined); return
        why it ended: "stop" (the model), "length" (the token limit or the window), "cancelled".

        Raises:
            GenerationError: the prompt does not fit the window, or llama.cpp failed.
        """
        lib = self._lib
        if not tokens:
            raise GenerationError("empty prompt")
        if len(tokens) >= self._n_ctx:
            raise GenerationError(
                f"the prompt is {len(tokens)} tokens, over the model's window of {self._n_ctx}"
            )
        self._evaluate(tokens)
        grammar = self._grammar(options)
        chain = self._sampler(options)
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            limit = min(options.max_tokens, self._n_ctx - len(self._past))
            for made in range(1, limit + 1):
                if cancel is not None and cancel.is_set():
                    return "cancelled"
                if grammar is None:
                    token = self._sample(chain)
                else:
                    token = self._sample_within(chain, grammar)
                if lib.llama_vocab_is_eog(self._vocab, token):
                    return "stop"
                size = lib.llama_token_to_piece(
                    self._vocab, token, self._piece, _PIECE_BYTES, 0, False
                )
                piece = text.decode(self._piece.raw[: max(size, 0)])
                if piece:
                    yield piece  # before the next forward pass: the reader sees it at once
                if made == limit:
                    break  # nothing is sampled after the last token, so it is not evaluated
                self._one[0] = token
                if lib.llama_decode(self._ctx, lib.llama_batch_get_one(self._one, 1)) != 0:
                    self.reset()
                    raise GenerationError("llama.cpp failed while generating")
                self._past.append(token)
            tail = text.decode(b"", final=True)
            if tail:
                yield tail
            return "length"  # the token limit, or the window, ended it
        finally:
            lib.llama_sampler_free(chain)
            if grammar is not None:
                lib.llama_sampler_free(grammar)
