"""`Tokenizer`: the one tokenizer interface serving and engines use (see docs/CONTRACTS.md).

It wraps a Hugging Face tokenizer loaded from a local folder or hub id. Special-token text in
prompts (``<|eot_id|>``, ``<|fim_prefix|>``...) is parsed into its special id; decoding skips
special tokens; a BOS is added only when asked and never twice. `IncrementalDecoder` turns a
stream of token ids into text pieces the way TGI's ``decode_token`` does: it keeps a small window
(prefix and read offsets) instead of re-decoding the whole output, and holds back text while the
last token ends inside a multi-byte UTF-8 character.

transformers is imported lazily (the API-only install has none; engines that need a tokenizer
bring it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Decoding a lone token can end inside a UTF-8 character; the decoder then yields this.
REPLACEMENT_CHAR = "\ufffd"


class Tokenizer:
    """A Hugging Face tokenizer behind the small interface the backend needs."""

    def __init__(
        self, hf_tokenizer: Any, *, generation_eos_ids: Iterable[int] = (), name: str = "", uses_bos: bool = True
    ) -> None:
        """Wrap `hf_tokenizer`; `generation_eos_ids` are extra eos ids from generation_config.json;
        `uses_bos=False` for a model that never starts with BOS (SmolLM2, whose BOS is <|im_start|>)."""
        self.hf = hf_tokenizer
        self.name = name or str(getattr(hf_tokenizer, "name_or_path", ""))
        self._vocab: dict[str, int] = dict(hf_tokenizer.get_vocab())
        eos: list[int] = []
        if hf_tokenizer.eos_token_id is not None:
            eos.append(int(hf_tokenizer.eos_token_id))
        eos += [int(i) for i in generation_eos_ids if int(i) not in eos]
        self._eos_ids = tuple(eos)
        specials = {str(t) for t in getattr(hf_tokenizer, "all_special_tokens", [])}
        for added in getattr(hf_tokenizer, "added_tokens_decoder", {}).values():
            if getattr(added, "special", False):
                specials.add(str(added.content))
        self._special_tokens = frozenset(specials)
        self._special_ids = frozenset(self._vocab[t] for t in specials if t in self._vocab)
        self._uses_bos = uses_bos

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, *, trust_remote_code: bool = False) -> Tokenizer:
        """Load the tokenizer (and generation_config.json's eos ids) of a local folder or hub id."""
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(str(name_or_path), trust_remote_code=trust_remote_code)
        return cls(
            hf, generation_eos_ids=_generation_eos_ids(name_or_path), name=str(name_or_path),
            uses_bos=_config_add_bos(name_or_path) is not False,
        )

    # -- properties -------------------------------------------------------------------------

    @property
    def bos_token(self) -> str | None:
        """The beginning-of-sequence token text (``<|begin_of_text|>``), or None if the model has none."""
        token = self.hf.bos_token
        return str(token) if token else None

    @property
    def bos_token_id(self) -> int | None:
        """The BOS id, or None."""
        token = self.bos_token
        return None if token is None else self._vocab.get(token)

    @property
    def eos_token(self) -> str | None:
        """The tokenizer's own eos token text (for Llama 3's first release: ``<|end_of_text|>``)."""
        token = self.hf.eos_token
        return str(token) if token else None

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        """The tokenizer's eos id plus generation_config.json's (prompting adds end-of-turn ids)."""
        return self._eos_ids

    @property
    def special_tokens(self) -> set[str]:
        """Text of every special token (never to appear in returned text)."""
        return set(self._special_tokens)

    @property
    def special_token_ids(self) -> frozenset[int]:
        """Ids of every special token."""
        return self._special_ids

    @property
    def vocab_size(self) -> int:
        """Number of token ids, added tokens included."""
        return len(self.hf)

    @property
    def chat_template(self) -> str | None:
        """The model's Jinja chat template, or None."""
        template = getattr(self.hf, "chat_template", None)
        return template if isinstance(template, str) else None

    # -- lookups ----------------------------------------------------------------------------

    def token_to_id(self, token: str) -> int | None:
        """The id of token text (special or not), or None if it is not one token."""
        return self._vocab.get(token)

    def id_to_token(self, token_id: int) -> str | None:
        """The token text of an id, or None if out of range."""
        token = self.hf.convert_ids_to_tokens(int(token_id))
        return str(token) if token is not None else None

    # -- text <-> ids -----------------------------------------------------------------------

    def encode(self, text: str, *, add_bos: bool) -> list[int]:
        """Token ids of `text`, special-token text parsed; with add_bos, one BOS (never a second),
        unless the tokenizer's config says the model takes none (``add_bos_token: false``)."""
        ids: list[int] = list(self.hf.encode(text, add_special_tokens=False))
        bos = self.bos_token_id
        if add_bos and self._uses_bos and bos is not None and (not ids or ids[0] != bos):
            ids.insert(0, bos)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`, special tokens skipped."""
        return str(self.hf.decode(list(ids), skip_special_tokens=True))

    def apply_chat_template(
        self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True
    ) -> str:
        """Render chat messages with the model's template (BOS included when the template adds it)."""
        if self.chat_template is None:
            raise ValueError(f"the tokenizer of {self.name or 'this model'} has no chat template")
        text = self.hf.apply_chat_template(
            [dict(m) for m in messages], tokenize=False, add_generation_prompt=add_generation_prompt
        )
        return str(text)

    def incremental_decoder(self, context_ids: Sequence[int] = ()) -> IncrementalDecoder:
        """A streaming decoder; `context_ids` (e.g. the prompt) only shape the first piece's spacing."""
        return IncrementalDecoder(self, context_ids)


class IncrementalDecoder:
    """Token ids in, new text out: TGI's prefix/read-offset scheme.

    Each step decodes only the window ``ids[prefix_offset:]`` (a few tokens) and compares it with
    the decode of ``ids[prefix_offset:read_offset]``; the difference is the new text. While that
    text ends in U+FFFD (a token that stops inside a multi-byte UTF-8 character) nothing is
    emitted and the offsets stay, so the next token completes the character. The concatenation of
    all pieces plus `flush()` equals `Tokenizer.decode` of all ids.
    """

    #: Tokens of prompt context kept so the first output token decodes with its real spacing.
    CONTEXT_TOKENS = 5

    def __init__(self, tokenizer: Tokenizer, context_ids: Sequence[int] = ()) -> None:
        """Start after `context_ids` (only their last few tokens are kept)."""
        self._tokenizer = tokenizer
        context = [i for i in context_ids if i not in tokenizer.special_token_ids][-self.CONTEXT_TOKENS :]
        self._ids: list[int] = list(context)
        self._prefix_offset = 0
        self._read_offset = len(context)

    def step(self, new_ids: Iterable[int]) -> str:
        """Add token ids and return the text they complete ("" if none is complete yet)."""
        self._ids.extend(int(i) for i in new_ids)
        prefix_text = self._tokenizer.decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._tokenizer.decode(self._ids[self._prefix_offset :])
        if len(new_text) > len(prefix_text) and not new_text.endswith(REPLACEMENT_CHAR):
            piece = new_text[len(prefix_text) :]
            self._prefix_offset = self._read_offset
            self._read_offset = len(self._ids)
            self._compact()
            return piece
        return ""

    def flush(self) -> str:
        """Text still held back at the end (e.g. an incomplete UTF-8 character, as U+FFFD)."""
        prefix_text = self._tokenizer.decode(self._ids[self._prefix_offset : self._read_offset])
        new_text = self._tokenizer.decode(self._ids[self._prefix_offset :])
        self._prefix_offset = self._read_offset = len(self._ids)
        return new_text[len(prefix_text) :] if len(new_text) > len(prefix_text) else ""

    def _compact(self) -> None:
        """Drop ids before the window so memory stays constant on long generations."""
        if self._prefix_offset > 64:
            self._ids = self._ids[self._prefix_offset :]
            self._read_offset -= self._prefix_offset
            self._prefix_offset = 0


def _config_add_bos(name_or_path: str | Path) -> bool | None:
    """A local tokenizer_config.json's explicit ``add_bos_token`` (transformers 5 drops it on load)."""
    try:
        value = json.loads((Path(name_or_path) / "tokenizer_config.json").read_text()).get("add_bos_token")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, bool) else None


def _generation_eos_ids(name_or_path: str | Path) -> list[int]:
    """eos_token_id(s) from a local generation_config.json (empty when absent or remote)."""
    path = Path(name_or_path) / "generation_config.json"
    if not path.is_file():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(str(name_or_path), "generation_config.json")
        except Exception:  # no hub package or a bad repo id: nothing to add
            return []
        if not isinstance(cached, str):
            return []
        path = Path(cached)
    try:
        value = json.loads(path.read_text()).get("eos_token_id")
    except (OSError, ValueError, AttributeError):
        logger.warning("could not read %s", path)
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, list):
        return [int(v) for v in value if isinstance(v, int)]
    return []
