"""Inline completion pipeline: debounce, one in-flight request per document, cancel, cache, stream.

``CompletionPipeline.suggest`` is what both LSP handlers (inline completion and the completion
fallback) call. The newest request for a document wins: it cancels the older one's task, which
closes the older HTTP stream (so the backend aborts the generation), and the older LSP request is
answered with no suggestion. Answers are cached (LRU); when the user types the start of the shown
suggestion the rest is served from memory without a backend call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from lsprotocol import types

from lsp.client import BackendClient, BackendError
from lsp.context.extract import CHARS_PER_TOKEN, build_completion_context
from lsp.documents import Document, DocumentStore, worsens_parse
from lsp.exclusion import ExclusionRules, MaskRecord, reveals_secret
from lsp.indentation import indent_unit
from lsp.postprocess import PostprocessInput, cut_at_scope_end, postprocess
from lsp.settings import Settings

logger = logging.getLogger(__name__)

CACHE_SIZE = 256
_PREFIX_KEY_CHARS = 1500
_SUFFIX_KEY_CHARS = 300


class CompletionHost(Protocol):
    """What the pipeline needs from the server (kept small so it is testable without LSP)."""

    config: Settings
    documents: DocumentStore
    index: Any
    exclusion: ExclusionRules

    @property
    def backend(self) -> BackendClient: ...

    def report_status(self, state: str, message: str, model: str | None = None) -> None: ...

    def content_excluded(self, path: str) -> str | None: ...

    def update_index(self, uri: str) -> None:
        """Re-index an open document and recompute its outline facts, off the event loop."""

    def report_error_once(self, condition: str, message: str) -> None: ...


@dataclass
class _Inflight:
    task: asyncio.Task[str | None]
    superseded: bool = False


@dataclass
class _Shown:
    """The last suggestion given for a document, for typing-through."""

    offset: int
    before: str  # text just before the cursor when it was given
    after: str  # text just after the cursor
    text: str


@dataclass
class PipelineStats:
    """Counters the tests and benchmarks read (via the `teampilot/stats` request)."""

    requests: int = 0
    cache_hits: int = 0
    backend_calls: int = 0
    completed: int = 0
    superseded: int = 0
    errors: int = 0
    excluded: int = 0          # requests in excluded files (never sent)
    secrets_dropped: int = 0   # suggestions dropped because they brought back a masked secret
    rate_limited: int = 0      # requests answered empty without a call while a 429's Retry-After runs
    last_timings: dict[str, float] = field(default_factory=dict)
    last_change_s: float = 0.0  # applying the last didChange (text, line index, incremental reparse)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {
            "requests": self.requests, "cacheHits": self.cache_hits, "backendCalls": self.backend_calls,
            "completed": self.completed, "superseded": self.superseded, "errors": self.errors,
            "excluded": self.excluded, "secretsDropped": self.secrets_dropped, "rateLimited": self.rate_limited,
            "lastTimings": dict(self.last_timings), "lastChangeSeconds": self.last_change_s,
        }


@dataclass(frozen=True)
class PromptParts:
    """What is sent to the backend for one suggestion, plus what post-processing needs."""

    prompt: str
    suffix: str
    multiline: bool
    language_id: str
    line_comment: str = "//"


def build_prompt(doc: Document, offset: int, index: Any, budget_tokens: int,
                 recent: Sequence[Document]) -> PromptParts:
    """Context for the backend request (lsp.context's extractor, or plain windows if it fails)."""
    try:
        ctx = build_completion_context(doc, offset, index, budget_tokens=budget_tokens, recent=recent)
        return PromptParts(prompt=ctx.prompt(), suffix=ctx.suffix, multiline=ctx.multiline,
                           language_id=doc.language_id, line_comment=ctx.line_comment)
    except Exception:
        logger.exception("context extraction failed; using plain windows")
    chars = int(budget_tokens * CHARS_PER_TOKEN)
    prefix = doc.text[max(0, offset - chars * 3 // 4):offset]
    suffix = doc.text[offset:offset + chars // 4]
    line_before = prefix.rsplit("\n", 1)[-1]
    line_after = suffix.split("\n", 1)[0]
    multiline = not line_after.strip() and line_before.rstrip().endswith((":", "{"))
    return PromptParts(prompt=prefix, suffix=suffix, multiline=multiline, language_id=doc.language_id)


def stop_sequences(multiline: bool, cursor_line: str) -> tuple[str, ...]:
    """Stop strings for the backend: the end of the line (single-line, cursor after some text), a
    blank line (single-line at an empty line), or two blank lines (multi-line: the next top-level block)."""
    if multiline:
        return ("\n\n\n",)
    return ("\n",) if cursor_line.strip() else ("\n\n",)


def should_stop_early(text: str, multiline: bool, cursor_line: str, brace_language: bool) -> bool:
    """True once the streamed text is enough: one full line (single-line) or past the scope end."""
    if not multiline:
        stripped = text.lstrip("\n") if not cursor_line.strip() or text.startswith("\n") else text
        head, sep, _ = stripped.partition("\n")
        return bool(sep) and bool(head.strip())
    if "\n\n\n" in text:
        return True
    complete, sep, _ = text.rpartition("\n")
    if not sep or "\n" not in complete:
        return False
    return len(cut_at_scope_end(complete, cursor_line, brace_language=brace_language)) < len(complete)


class CompletionPipeline:
    """Inline completion for one server: see the module docstring."""

    def __init__(self, host: CompletionHost, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self.host = host
        self.clock = clock
        self.stats = PipelineStats()
        self._inflight: dict[str, _Inflight] = {}
        self._cache: OrderedDict[tuple[str, str, str], str] = OrderedDict()
        self._shown: dict[str, _Shown] = {}
        # while the backend is unreachable, a connection attempt is refused in about a millisecond:
        # skip the debounce then, so the editor gets its empty answer at once
        self._backend_down = False
        self._rules_generation = -1

    # -- cache -----------------------------------------------------------------------------------

    @staticmethod
    def _key(doc: Document, offset: int) -> tuple[str, str, str]:
        text = doc.text
        return (doc.uri, text[max(0, offset - _PREFIX_KEY_CHARS):offset], text[offset:offset + _SUFFIX_KEY_CHARS])

    def _remember(self, doc: Document, offset: int, suggestion: str) -> None:
        key = self._key(doc, offset)
        self._cache[key] = suggestion
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        self._shown[doc.uri] = _Shown(offset=offset, before=key[1][-200:], after=key[2], text=suggestion)

    def cached(self, doc: Document, offset: int) -> str | None:
        """A suggestion for this exact spot from the LRU cache, or the rest of the shown one when
        the user typed its beginning."""
        key = self._key(doc, offset)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        shown = self._shown.get(doc.uri)
        if shown is None or offset <= shown.offset:
            return None
        text = doc.text
        typed = text[shown.offset:offset]
        if (
            len(typed) < len(shown.text)
            and shown.text.startswith(typed)
            and text[max(0, shown.offset - len(shown.before)):shown.offset] == shown.before
            and text[offset:offset + len(shown.after)] == shown.after
        ):
            rest = shown.text[len(typed):]
            if rest.strip():
                self._cache[key] = rest
                return rest
        return None

    def backend_reachable(self, reachable: bool) -> None:
        """Tell the pipeline what a health check found (unreachable: no debounce, answer at once)."""
        self._backend_down = not reachable

    def _follow_exclusion_rules(self) -> None:
        """After the exclusion rules changed, nothing gathered under the old ones is reused: the
        suggestions cache, and the context cache of each document gathered under older rules (the
        snippets kept across keystrokes, the outline facts: recomputed off the event loop)."""
        generation = self.host.exclusion.generation
        if generation == self._rules_generation:
            return
        self._rules_generation = generation
        self._cache.clear()
        self._shown.clear()
        for doc in self.host.documents:
            if doc.context.rules_generation != generation:
                doc.context.clear(generation)
                self.host.update_index(doc.uri)

    def invalidate(self) -> None:
        """Forget every cached suggestion (the backend or model changed)."""
        self._backend_down = False
        self._cache.clear()
        self._shown.clear()

    # -- requests ----------------------------------------------------------------------------------

    def cancel(self, uri: str) -> None:
        """Supersede the in-flight request of a document (its LSP request is answered empty)."""
        previous = self._inflight.pop(uri, None)
        if previous is not None and not previous.task.done():
            previous.superseded = True
            self.stats.superseded += 1
            previous.task.cancel()

    async def suggest(self, uri: str, position: types.Position, encoding: str) -> tuple[str, int] | None:
        """The suggestion for a position and the str offset it applies at, or None.

        Raises ``asyncio.CancelledError`` only when this request itself was cancelled
        (`$/cancelRequest`); a request superseded by a newer one returns None.
        """
        started = self.clock()
        self.stats.requests += 1
        settings = self.host.config.completion
        doc = self.host.documents.get(uri)
        if doc is None or not settings.enabled:
            return None
        if self.host.content_excluded(doc.path) is not None:
            self.stats.excluded += 1
            return None
        self._follow_exclusion_rules()
        t_exclusion = self.clock() - started
        offset = doc.offset_at(position, encoding)
        self.cancel(uri)
        hit = self.cached(doc, offset)
        if hit is not None:
            self.stats.cache_hits += 1
            self.stats.last_timings = {"total": self.clock() - started, "cache": 1.0}
            return hit, offset
        if self.host.backend.rate_limited_for() > 0:
            self.stats.rate_limited += 1
            return None  # the backend said when to come back (429 Retry-After): no request before
        deadline = asyncio.get_running_loop().time() + settings.timeout_ms / 1000
        task = asyncio.create_task(self._generate(doc, offset, doc.version, deadline, started, t_exclusion))
        record = _Inflight(task)
        self._inflight[uri] = record
        try:
            text = await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if record.superseded and (current is None or not current.cancelling()):
                return None
            raise
        finally:
            if self._inflight.get(uri) is record:
                del self._inflight[uri]
        return (text, offset) if text else None

    async def _generate(self, doc: Document, offset: int, version: int, deadline: float,
                        started: float, t_exclusion: float) -> str | None:
        settings = self.host.config.completion
        if settings.debounce_ms and not self._backend_down:
            await asyncio.sleep(settings.debounce_ms / 1000)
        if doc.version != version or self.host.documents.get(doc.uri) is not doc:
            return None  # edited meanwhile: the editor asks again for the new text
        t0 = self.clock()
        allows = self.host.exclusion.allows
        recent = [d for d in self.host.documents.recent(5) if allows(d.path)]
        parts = build_prompt(doc, offset, self.host.index, settings.prompt_tokens, recent)
        full_prefix, full_suffix = doc.text[:offset], doc.text[offset:]
        cursor_line = full_prefix.rsplit("\n", 1)[-1]
        # braces delimit blocks: a grammar's own fact, else a `//` comment says C-like (C#, Kotlin, ...)
        brace = not doc.language.indent_blocks if doc.language is not None else parts.line_comment == "//"
        # the tree the suggestion is checked against (a copy is cheap; the text may change meanwhile)
        before = doc.tree.copy() if parts.multiline and doc.tree is not None else None
        t_context = self.clock() - t0
        backend = self.host.backend
        masked = MaskRecord()
        t_backend0 = self.clock()
        try:
            async with asyncio.timeout_at(deadline):
                raw = await self._collect(backend, parts, settings.max_tokens, cursor_line, brace, masked)
        except TimeoutError:
            self.stats.errors += 1
            self._failed("timeout", f"teampilot: the backend did not answer within {settings.timeout_ms} ms")
            return None
        except BackendError as exc:
            self.stats.errors += 1
            self._backend_down = exc.condition == "unavailable"
            self._failed(exc.condition, f"teampilot: {exc}", status=exc.status)
            return None
        t_backend = self.clock() - t_backend0 - masked.seconds  # masking is our work, not the backend's
        self._backend_down = False
        self.stats.completed += 1
        self.host.report_status("ok", "ready", backend.resolved_model)
        t1 = self.clock()
        ctx = PostprocessInput(prefix=full_prefix, suffix=full_suffix, multiline=parts.multiline,
                               brace_language=brace, indent_unit=indent_unit(parts.prompt[-4000:]))
        try:
            suggestion = postprocess(raw, ctx)
            if suggestion is not None and before is not None and "\n" in suggestion and doc.language is not None \
                    and worsens_parse(doc.language, before, full_prefix, suggestion, full_suffix):
                suggestion = None
        except Exception:  # a bug here must cost one suggestion, never the editor's request
            logger.exception("post-processing failed")
            suggestion = None
        if suggestion and reveals_secret(suggestion, masked.secrets):
            self.stats.secrets_dropped += 1
            suggestion = None
        self.stats.last_timings = {
            "context": t_context, "backend": t_backend, "postprocess": self.clock() - t1,
            "exclusion": t_exclusion, "mask": masked.seconds, "total": self.clock() - started,
        }
        if suggestion:
            self._remember(doc, offset, suggestion)
        return suggestion

    async def _collect(self, backend: BackendClient, parts: PromptParts, max_tokens: int,
                       cursor_line: str, brace: bool, masked: MaskRecord) -> str:
        self.stats.backend_calls += 1
        pieces: list[str] = []
        stream: AsyncIterator[str] = backend.stream_completion(
            parts.prompt, parts.suffix, max_tokens=max_tokens, stop=stop_sequences(parts.multiline, cursor_line),
            mask_record=masked, language_id=parts.language_id,
        )
        async with contextlib.aclosing(stream):  # type: ignore[type-var]
            async for piece in stream:
                pieces.append(piece)
                if "\n" in piece and should_stop_early("".join(pieces), parts.multiline, cursor_line, brace):
                    break
        return "".join(pieces)

    def _failed(self, condition: str, message: str, status: int | None = None) -> None:
        state = "loading" if status == 503 else "error"
        self.host.report_status(state, message, self.host.backend.resolved_model)
        if state == "error":
            self.host.report_error_once(condition, message)
