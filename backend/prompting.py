"""Prompting owned by the backend: model families, FIM formats, chat templates and stop tokens.

Pure functions and small classes over plain data; `Prompter` binds them to one tokenizer and model
card and caches what it can, so the per-request work is string concatenation plus one tokenisation.

- Family detection: from the model name when it says (``Meta-Llama-3``, ``Qwen2.5-Coder``...),
  else from the tokenizer's special tokens (which FIM / chat markers it has).
- FIM: a request ``suffix`` renders the family's own FIM format when the tokenizer has its markers;
  otherwise (Llama 3 Instruct and other non-FIM models) the family's `HOLE_MODES` entry decides:
  a hole-filling chat prompt ("chat"), or a plain continuation of the prefix ("continue"); either
  answer is cleaned by `HoleFillCleaner`. A ``prompt`` that already carries any family's FIM markers
  (Continue sends ``<fim_prefix>…<fim_suffix>…<fim_middle>``) is split and re-rendered the same way.
- Stops: the family's end-of-turn tokens always stop generation (for Llama 3 ``<|eot_id|>``,
  ``<|end_of_text|>``, ``<|eom_id|>``, whatever generation_config says); client stop strings that
  are special tokens become stop ids, the rest are matched as text by `TextStopper`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from backend.errors import ContextLengthExceeded, InvalidRequest


class TokenizerLike(Protocol):
    """What prompting needs from `backend.tokenizer.Tokenizer`."""

    @property
    def bos_token(self) -> str | None:
        """BOS text, or None."""
        ...

    @property
    def eos_token_ids(self) -> Sequence[int]:
        """The tokenizer's (and generation config's) eos ids."""
        ...

    @property
    def special_tokens(self) -> set[str]:
        """Text of every special token."""
        ...

    def encode(self, text: str, *, add_bos: bool) -> list[int]:
        """Token ids; special-token text becomes special ids."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Text without special tokens."""
        ...

    def apply_chat_template(self, messages: list[dict[str, str]]) -> str:
        """The chat prompt, ending with the assistant generation header."""
        ...


# ---------------------------------------------------------------------------------------------
# FIM formats


@dataclass(frozen=True)
class FimFormat:
    """A family's fill-in-the-middle layout: ``head + prefix + mid + suffix + tail`` (PSM) or,
    with ``suffix_first``, ``head + suffix + mid + prefix`` (SPM, Codestral)."""

    family: str
    head: str
    mid: str
    tail: str
    suffix_first: bool = False
    stop_tokens: tuple[str, ...] = ()  # besides the tokenizer's eos

    def render(self, prefix: str, suffix: str) -> str:
        """The FIM prompt text for prefix and suffix."""
        if self.suffix_first:
            return f"{self.head}{suffix}{self.mid}{prefix}"
        return f"{self.head}{prefix}{self.mid}{suffix}{self.tail}"

    def markers(self) -> tuple[str, ...]:
        """The special tokens this format needs in the vocabulary."""
        return tuple(m.strip() for m in (self.head, self.mid, self.tail) if m.strip())


FIM_FORMATS: dict[str, FimFormat] = {
    "qwen-coder": FimFormat(
        "qwen-coder",
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        stop_tokens=("<|endoftext|>", "<|im_end|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>",
                     "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    ),
    "codellama": FimFormat("codellama", "<PRE> ", " <SUF>", " <MID>", stop_tokens=("<EOT>", "</s>")),
    "deepseek-coder": FimFormat(
        "deepseek-coder",
        "<｜fim▁begin｜>",
        "<｜fim▁hole｜>",
        "<｜fim▁end｜>",
        stop_tokens=("<|EOT|>", "<｜end▁of▁sentence｜>"),
    ),
    "starcoder": FimFormat(
        "starcoder",
        "<fim_prefix>",
        "<fim_suffix>",
        "<fim_middle>",
        stop_tokens=("<|endoftext|>", "<file_sep>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    ),
    "codestral": FimFormat("codestral", "[SUFFIX]", "[PREFIX]", "", suffix_first=True, stop_tokens=("</s>",)),
}

#: End-of-turn tokens that always stop generation, per family (only those in the vocabulary count).
FAMILY_STOP_TOKENS: dict[str, tuple[str, ...]] = {
    "llama3": ("<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"),
    "qwen-coder": ("<|im_end|>", "<|endoftext|>"),
    "codellama": ("</s>",),
    "deepseek-coder": ("<|EOT|>", "<｜end▁of▁sentence｜>"),
    "starcoder": ("<|endoftext|>",),
    "codestral": ("</s>",),
    "smollm": ("<|im_end|>", "<|endoftext|>"),
    "generic": ("<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|end|>"),
}

#: BOS texts that may lead a client-rendered prompt; dropped when a FIM prompt is re-rendered.
_BOS_TEXTS = ("<|begin_of_text|>", "<s>", "<｜begin▁of▁sentence｜>", "<|endoftext|>")


@dataclass(frozen=True)
class FimSplit:
    """A prompt recognised as client-rendered FIM."""

    family: str
    prefix: str
    suffix: str


def split_fim_prompt(prompt: str) -> FimSplit | None:
    """Recognise a prompt rendered in any family's FIM format and split it into prefix and suffix.

    Text before the first marker (e.g. a leading BOS, repository headers) stays in front of the
    prefix, BOS text excepted. PSM prompts must end with the middle marker (whitespace allowed).
    """
    for fmt in FIM_FORMATS.values():
        found = _split_with(fmt, prompt)
        if found is not None:
            return found
    return None


def _split_with(fmt: FimFormat, prompt: str) -> FimSplit | None:
    """Split prompt by one format, or None if it is not in that format."""
    head, mid, tail = fmt.head.strip(), fmt.mid.strip(), fmt.tail.strip()
    start = prompt.find(head)
    if start < 0:
        return None
    preamble = _drop_bos(prompt[:start])
    body_start = start + len(head)
    sep = prompt.find(mid, body_start)
    if sep < 0:
        return None
    first = prompt[body_start:sep]
    if fmt.suffix_first:
        if preamble.strip():
            return None  # [SUFFIX] must lead the prompt
        return FimSplit(fmt.family, prompt[sep + len(mid):], first)
    end = prompt.rfind(tail)
    if end < sep + len(mid) or prompt[end + len(tail):].strip():
        return None
    second = prompt[sep + len(mid):end]
    # formats padded with spaces around markers ("<PRE> {p} <SUF>{s} <MID>") lose exactly that pad
    if fmt.head.endswith(" ") and first.startswith(" "):
        first = first[1:]
    if fmt.mid.startswith(" ") and first.endswith(" "):
        first = first[:-1]
    if fmt.tail.startswith(" ") and second.endswith(" "):
        second = second[:-1]
    return FimSplit(fmt.family, preamble + first, second)


def _drop_bos(text: str) -> str:
    """Text without a leading BOS marker."""
    for bos in _BOS_TEXTS:
        if text.startswith(bos):
            return text[len(bos):]
    return text


# ---------------------------------------------------------------------------------------------
# Family detection

_NAME_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("codestral",), "codestral"),
    (("qwen", "coder"), "qwen-coder"),
    (("codeqwen",), "qwen-coder"),
    (("codellama",), "codellama"),
    (("code-llama",), "codellama"),
    (("deepseek", "coder"), "deepseek-coder"),
    (("starcoder",), "starcoder"),
    (("llama-3",), "llama3"),
    (("llama3",), "llama3"),
    (("smollm",), "smollm"),
)

_VOCAB_RULES: tuple[tuple[str, str], ...] = (
    ("<|fim_prefix|>", "qwen-coder"),
    ("<｜fim▁begin｜>", "deepseek-coder"),
    ("<fim_prefix>", "starcoder"),
    ("[SUFFIX]", "codestral"),
    ("<PRE>", "codellama"),
    ("▁<PRE>", "codellama"),
    ("<|start_header_id|>", "llama3"),
)


def detect_family(name: str, vocab: Collection[str]) -> str:
    """The model family: from the name when it says (e.g. ``Meta-Llama-3-8B``), else from the
    tokenizer's special tokens, else "generic"."""
    lowered = name.lower().replace("_", "-")
    for needles, family in _NAME_RULES:
        if all(n in lowered for n in needles):
            return family
    for token, family in _VOCAB_RULES:
        if token in vocab:
            return family
    return "generic"


# ---------------------------------------------------------------------------------------------
# Hole filling for models without FIM training

#: How a model without FIM training fills a hole (a request with a ``suffix``), by family:
#: "chat" asks the instruct model, in a chat turn, for the code that replaces {{FILL_HERE}};
#: "continue" continues the prefix as plain text and stops where the answer reaches the line after
#: the hole (the language server trims further). Families not listed use "chat". Measured for
#: SmolLM2-135M-Instruct ("smollm") with scripts/eval_quality.py (201 whole-line sites from 9 real
#: Python/TypeScript/Go packages, greedy): continuation 2.5% exact match, edit similarity 0.234;
#: the hole-filling chat prompt 0.0% and 0.139 (paired difference -0.095, 95% CI [-0.128, -0.064]);
#: its chat answers were mostly prose ("The code is already completed..."). Llama 3 Instruct keeps
#: "chat": a 135 M model's result says nothing about an 8 B one.
HOLE_MODES: dict[str, str] = {"smollm": "continue"}
HOLE_MODE_CHOICES = ("auto", "chat", "continue")

HOLE = "{{FILL_HERE}}"
HOLE_SYSTEM = (
    "You fill a hole in code. The user sends a file with exactly one hole marked {{FILL_HERE}}. "
    "Reply with only the code that replaces {{FILL_HERE}}: no explanation, no code fences, and "
    "nothing that is already before or after the hole."
)


def hole_fill_messages(prefix: str, suffix: str) -> list[dict[str, str]]:
    """The chat messages asking an instruct model to fill the hole between prefix and suffix."""
    return [{"role": "system", "content": HOLE_SYSTEM}, {"role": "user", "content": prefix + HOLE + suffix}]


class HoleFillCleaner:
    """Streams a chat model's hole-filling answer into the text that goes in the hole.

    Works line by line: drops an opening code fence and stops at a closing one; at the start drops
    lines that repeat the lines before the cursor (a run ending at the cursor line) and the echo of
    the cursor line's own prefix; strips the rest of the cursor line from the end of the first
    line; stops before a line that repeats what follows the hole; drops trailing blank lines.

    With ``continuation`` (a plain continuation of the prefix, not a chat answer) there are no
    fences or echoes to drop: only the rest-of-line trim, the suffix-repeat stop and blank lines apply.
    """

    ECHO_LINES = 12  # how many lines before the cursor an echo may repeat

    def __init__(self, prefix: str, suffix: str, *, continuation: bool = False) -> None:
        self._continuation = continuation
        before, _, self._line_prefix = prefix.rpartition("\n")
        self._tail = [line.strip() for line in before.split("\n") if line.strip()][-self.ECHO_LINES:]
        first_suffix_line, _, rest = suffix.partition("\n")
        self._line_suffix = first_suffix_line.strip()  # rest of the cursor line
        next_lines = (rest if not self._line_suffix else "").split("\n")
        following = next((ln for ln in [first_suffix_line, *next_lines] if ln.strip()), "")
        self._suffix_line = following.strip()
        self._buffer = ""
        self._first = True  # no code line emitted yet
        self._pending = ""  # newlines and blank lines emitted only if more code follows
        self._echo: list[str] = []  # lines held back: they may repeat the prefix
        self._echo_starts: list[int] = []
        self._done = False

    @property
    def done(self) -> bool:
        """Whether the answer is complete (a closing fence or the suffix was reached)."""
        return self._done

    def feed(self, text: str) -> str:
        """Add generated text; returns what can be emitted now."""
        if self._done:
            return ""
        self._buffer += text
        out: list[str] = []
        while not self._done and "\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition("\n")
            out.append(self._line(line, complete=True))
        return "".join(out)

    def finish(self) -> str:
        """The rest once generation ended (a trailing newline or blank lines are dropped)."""
        line, self._buffer = self._buffer, ""
        out = [] if self._done else self._release_echo()
        if not self._done and line.strip():
            out.append(self._line(line, complete=False))
        self._done = True
        return "".join(out)

    def _line(self, line: str, *, complete: bool) -> str:
        """Process one line; returns the text to emit for it."""
        stripped = line.strip()
        if self._continuation:
            if not stripped:
                if self._first and complete:  # the cursor line ends here: the answer goes on below it
                    self._first = False
                    self._pending = line + "\n"
                elif not self._first:
                    self._pending += line + "\n"
                return ""
            return self._code(line, stripped, complete)
        if stripped.startswith("```"):
            if self._first and complete and not self._echo:
                return ""  # opening fence (with or without a language)
            self._done = True  # closing fence
            return ""
        if HOLE in line:
            line = line.replace(HOLE, "")
            stripped = line.strip()
        if not stripped:
            if not self._first:
                self._pending += line + "\n"
            return ""  # blank lines wait for more code (leading ones are dropped)
        if self._first and complete and self._held_as_echo(line, stripped):
            return ""
        out = self._release_echo()
        out.append(self._code(line, stripped, complete))
        return "".join(out)

    def _held_as_echo(self, line: str, stripped: str) -> bool:
        """Hold a line that continues a repeat of the lines before the cursor; once the repeat
        reaches the cursor line, drop everything held."""
        held = len(self._echo)
        if held == 0:
            starts = [i for i, t in enumerate(self._tail) if t == stripped and len(t) > 1]
        else:
            starts = [i for i in self._echo_starts if i + held < len(self._tail) and self._tail[i + held] == stripped]
        if not starts:
            return False
        if any(i + held == len(self._tail) - 1 for i in starts):  # the repeat reached the cursor line
            self._echo, self._echo_starts = [], []
        else:
            self._echo.append(line)
            self._echo_starts = starts
        return True

    def _release_echo(self) -> list[str]:
        """Held lines that turned out not to be an echo, as output."""
        held, self._echo, self._echo_starts = self._echo, [], []
        return [self._code(line, line.strip(), True) for line in held]

    def _code(self, line: str, stripped: str, complete: bool) -> str:
        """Emit one code line (first-line echo and rest-of-line trimming, suffix-repeat stop)."""
        if self._done:
            return ""
        if self._first and self._continuation:
            if self._line_suffix:  # a hole inside a line: the continuation ends with that line
                if line.rstrip().endswith(self._line_suffix):
                    line = line.rstrip()[: -len(self._line_suffix)]
                self._done = complete
                self._first = False
                return self._pending + line
        elif self._first:
            if self._line_prefix and line.startswith(self._line_prefix):
                line = line[len(self._line_prefix):]
            elif self._line_prefix.strip() and line.lstrip().startswith(self._line_prefix.strip()):
                line = line.lstrip()[len(self._line_prefix.strip()):]
            if self._line_suffix and line.rstrip().endswith(self._line_suffix):
                line = line.rstrip()[: -len(self._line_suffix)]
        elif len(self._suffix_line) > 1 and stripped == self._suffix_line:
            self._done = True  # the model is repeating what follows the hole
            return ""
        self._first = False
        text = self._pending + line
        self._pending = "\n" if complete else ""
        return text


# ---------------------------------------------------------------------------------------------
# Text stops


class TextStopper:
    """Applies plain-text stop strings to a stream: holds back the tail that could start a stop,
    cuts the output before the first stop found (the stop itself is not returned)."""

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._hold = max((len(s) for s in self._stops), default=1) - 1
        self._buffer = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """Add text; returns what is safe to emit. Sets `stopped` when a stop string was found."""
        if self.stopped:
            return ""
        if not self._stops:
            return text
        searched_from = max(0, len(self._buffer) - self._hold)
        self._buffer += text
        cut = -1
        for stop in self._stops:
            index = self._buffer.find(stop, searched_from)
            if index >= 0 and (cut < 0 or index < cut):
                cut = index
        if cut >= 0:
            self.stopped = True
            out, self._buffer = self._buffer[:cut], ""
            return out
        if self._hold == 0:
            out, self._buffer = self._buffer, ""
            return out
        keep = len(self._buffer) - self._hold
        if keep <= 0:
            return ""
        out, self._buffer = self._buffer[:keep], self._buffer[keep:]
        return out

    def finish(self) -> str:
        """The held-back tail once generation ended without a stop."""
        out, self._buffer = ("" if self.stopped else self._buffer), ""
        return out


# ---------------------------------------------------------------------------------------------
# Prompter: everything above bound to one model


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt ready for the engine."""

    token_ids: list[int]
    text: str | None  # the prompt text (for echo); None when the client sent token ids
    mode: str  # "plain" | "fim-native" | "fim-chat" | "fim-continue" | "chat"
    prefix: str = ""
    suffix: str = ""
    trimmed: bool = False

    def cleaner(self) -> HoleFillCleaner | None:
        """The post-processor the answer needs (hole filling by chat or by continuation only)."""
        if self.mode == "fim-chat":
            return HoleFillCleaner(self.prefix, self.suffix)
        if self.mode == "fim-continue":
            return HoleFillCleaner(self.prefix, self.suffix, continuation=True)
        return None


@dataclass
class Prompter:
    """Renders and tokenises prompts for one model; built once when the engine is ready."""

    tokenizer: TokenizerLike
    family: str
    max_model_len: int
    hole_mode: str = "auto"  # non-FIM models: "chat" | "continue"; "auto" = the family's HOLE_MODES entry
    fim: FimFormat | None = field(init=False)
    end_token_ids: tuple[int, ...] = field(init=False)
    _special_ids: dict[str, int] = field(init=False, default_factory=dict)
    _hole_template: tuple[str, str, bool] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.hole_mode == "auto":
            self.hole_mode = HOLE_MODES.get(self.family, "chat")
        if self.hole_mode not in HOLE_MODE_CHOICES[1:]:
            raise ValueError(f"unknown hole mode {self.hole_mode!r}; choose one of {HOLE_MODE_CHOICES}")
        specials = self.tokenizer.special_tokens
        fmt = FIM_FORMATS.get(self.family)
        self.fim = fmt if fmt is not None and all(m in specials for m in fmt.markers()) else None
        ends: list[int] = []
        wanted = list(FAMILY_STOP_TOKENS.get(self.family, ()))
        if self.fim is not None:
            wanted += self.fim.stop_tokens
        for token in wanted:
            token_id = self.special_id(token)
            if token_id is not None and token_id not in ends:
                ends.append(token_id)
        for token_id in self.tokenizer.eos_token_ids:
            if token_id not in ends:
                ends.append(token_id)
        self.end_token_ids = tuple(ends)

    # -- tokens --------------------------------------------------------------------------------

    def special_id(self, token: str) -> int | None:
        """The id of a special token's text, or None when it is not one token of this vocabulary."""
        if token in self._special_ids:
            return self._special_ids[token]
        if token not in self.tokenizer.special_tokens:
            return None
        ids = self.tokenizer.encode(token, add_bos=False)
        if len(ids) != 1:
            return None
        self._special_ids[token] = ids[0]
        return ids[0]

    def encode(self, text: str) -> list[int]:
        """Tokenise a prompt: special-token text is parsed, BOS added unless already there."""
        bos = self.tokenizer.bos_token
        return self.tokenizer.encode(text, add_bos=not (bos and text.startswith(bos)))

    def stops(self, client_stops: Sequence[str]) -> tuple[tuple[int, ...], tuple[str, ...]]:
        """(stop token ids, text stops): the family's end ids plus client stops that are special tokens."""
        ids = list(self.end_token_ids)
        texts: list[str] = []
        for stop in client_stops:
            token_id = self.special_id(stop)
            if token_id is None:
                texts.append(stop)
            elif token_id not in ids:
                ids.append(token_id)
        return tuple(ids), tuple(texts)

    # -- rendering -----------------------------------------------------------------------------

    def render_chat(self, messages: list[dict[str, str]]) -> RenderedPrompt:
        """A chat prompt from the tokenizer's template; 400 when it cannot fit."""
        try:
            text = self.tokenizer.apply_chat_template(messages)
        except Exception as exc:  # no template, or the template rejects these messages
            raise InvalidRequest(f"The chat template cannot render these messages: {exc}", param="messages") from None
        ids = self.encode(text)
        self.check_fits(len(ids), param="messages")
        return RenderedPrompt(ids, text, "chat")

    def render_completion(self, prompt: str | list[int], suffix: str | None, reserve: int) -> RenderedPrompt:
        """A completion prompt: FIM when there is a suffix or client-rendered FIM markers
        (trimmed to leave `reserve` tokens for the answer), else the prompt as sent (400 if too long)."""
        if isinstance(prompt, list):
            self.check_fits(len(prompt))
            return RenderedPrompt(prompt, None, "plain")
        if suffix is not None:
            return self.render_fim(prompt, suffix, reserve)
        split = split_fim_prompt(prompt) if self._may_carry_fim(prompt) else None
        if split is not None:
            return self.render_fim(split.prefix, split.suffix, reserve)
        ids = self.encode(prompt)
        self.check_fits(len(ids))
        return RenderedPrompt(ids, prompt, "plain")

    def render_fim(self, prefix: str, suffix: str, reserve: int) -> RenderedPrompt:
        """The family's FIM prompt (or a hole-filling chat prompt), trimmed to fit: far prefix
        first, then far suffix."""
        budget = max(1, self.max_model_len - max(1, reserve))
        trimmed = False
        overhead = 0
        for _ in range(8):
            rendered = self._fim_once(prefix, suffix)
            if len(rendered.token_ids) <= budget:
                return RenderedPrompt(rendered.token_ids, rendered.text, rendered.mode, prefix, suffix, trimmed)
            if not trimmed:
                overhead = len(self._fim_once("", "").token_ids)
                trimmed = True
            content = len(rendered.token_ids) - overhead
            prefix, suffix = _trim_fim(prefix, suffix, content, budget - overhead)
        rendered = self._fim_once(prefix, suffix)
        self.check_fits(len(rendered.token_ids))
        return RenderedPrompt(rendered.token_ids, rendered.text, rendered.mode, prefix, suffix, True)

    def _fim_once(self, prefix: str, suffix: str) -> RenderedPrompt:
        """Render and tokenise one FIM attempt."""
        if self.fim is not None:
            text = self.fim.render(prefix, suffix)
            return RenderedPrompt(self.encode(text), text, "fim-native", prefix, suffix)
        if self.hole_mode == "continue":
            return RenderedPrompt(self.encode(prefix), prefix, "fim-continue", prefix, suffix)
        pieces = self._hole_pieces()
        if pieces is None:  # no usable chat template: a plain completion of the prefix
            return RenderedPrompt(self.encode(prefix), prefix, "plain", prefix, suffix)
        text = pieces[0] + prefix + HOLE + suffix + pieces[1]
        return RenderedPrompt(self.encode(text), text, "fim-chat", prefix, suffix)

    def _hole_pieces(self) -> tuple[str, str] | None:
        """The hole-filling chat prompt around the user's content, rendered once by the template
        (with the instructions in the user turn for templates without a system role); None when
        the tokenizer has no usable chat template."""
        if self._hole_template is None:
            sentinel = "\x00TEAMPILOT-HOLE-CONTENT\x00"
            attempts = (
                hole_fill_messages(sentinel, ""),
                [{"role": "user", "content": f"{HOLE_SYSTEM}\n\n{sentinel}{HOLE}"}],
            )
            self._hole_template = ("", "", False)
            for messages in attempts:
                try:
                    text = self.tokenizer.apply_chat_template(messages)
                except Exception:  # no template, or one that rejects a system turn
                    continue
                head, found, tail = text.partition(sentinel + HOLE)
                if found:
                    self._hole_template = (head, tail, True)
                    break
        head, tail, usable = self._hole_template
        return (head, tail) if usable else None

    def _may_carry_fim(self, prompt: str) -> bool:
        """Cheap pre-check before splitting: any FIM head marker in the prompt."""
        return any(fmt.head.strip() in prompt for fmt in FIM_FORMATS.values())

    def check_fits(self, prompt_tokens: int, *, param: str = "prompt") -> None:
        """400 context_length_exceeded when the prompt leaves no room for one token."""
        if prompt_tokens >= self.max_model_len:
            raise ContextLengthExceeded(self.max_model_len, prompt_tokens, param=param)

    def clamp_max_tokens(self, requested: int | None, prompt_tokens: int, default: int | None) -> int:
        """max_tokens clamped to what fits after the prompt (at least 1)."""
        room = max(1, self.max_model_len - prompt_tokens)
        wanted = requested if requested is not None else default
        return room if wanted is None else max(1, min(wanted, room))


def _trim_fim(prefix: str, suffix: str, content_tokens: int, target_tokens: int) -> tuple[str, str]:
    """Cut prefix + suffix (content_tokens now) to about target_tokens: the far prefix first, then
    the far suffix, at line boundaries where possible. Characters stand in for tokens in proportion;
    the caller re-checks and calls again if needed."""
    total_chars = len(prefix) + len(suffix)
    ratio = max(0.0, target_tokens) / max(1, content_tokens)
    keep_total = min(total_chars - 1, int(total_chars * ratio * 0.97)) if total_chars else 0
    keep_total = max(0, keep_total)
    # the prefix gives up to all but a quarter of what is kept
    suffix_keep = min(len(suffix), max(keep_total - len(prefix), keep_total // 4))
    prefix_keep = max(0, keep_total - suffix_keep)
    if prefix_keep < len(prefix):
        start = len(prefix) - prefix_keep
        newline = prefix.find("\n", start)
        prefix = prefix[newline + 1:] if 0 <= newline < start + 200 else prefix[start:]
    if suffix_keep < len(suffix):
        newline = suffix.rfind("\n", 0, suffix_keep + 1)
        suffix = suffix[: newline + 1] if newline >= 0 and newline > suffix_keep - 200 else suffix[:suffix_keep]
    return prefix, suffix
