"""Small real tokenizers built in-process for prompting and API tests (no model files needed).

`llama3_tokenizer()` is a byte-level BPE trained on a few strings with the Llama 3 special tokens
and Meta's Llama 3 chat template; like Meta's first release its eos is only `<|end_of_text|>`.
`qwen_fim_tokenizer()` has Qwen2.5-Coder's FIM tokens and a ChatML template.
Both come wrapped in the backend's own `backend.tokenizer.Tokenizer`.
"""

from __future__ import annotations

import functools

from tokenizers import Tokenizer as RawTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from backend.tokenizer import Tokenizer

LLAMA3_SPECIALS = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eot_id|>", "<|eom_id|>", "<|python_tag|>", "<|finetune_right_pad_id|>",
]
QWEN_SPECIALS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
]
# Meta's Llama 3 Instruct chat template, verbatim
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "print(add(1, 2))\n",
    "import os\nimport sys\n\n\ndef main(argv):\n    return 0\n",
    "The quick brown fox jumps over the lazy dog. Hello, world!",
    "class Stack:\n    def push(self, item):\n        self.items.append(item)\n",
    "for i in range(10):\n    total += i\n",
]


def _train(specials: list[str]) -> RawTokenizer:
    """A byte-level BPE on CORPUS with the given special tokens."""
    raw = RawTokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator(CORPUS * 3, trainer)
    return raw


@functools.cache
def llama3_tokenizer() -> PreTrainedTokenizerFast:
    """A Llama-3-format tokenizer (eos only <|end_of_text|>; BOS added by the contract wrapper)."""
    return PreTrainedTokenizerFast(
        tokenizer_object=_train(LLAMA3_SPECIALS),
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        chat_template=LLAMA3_TEMPLATE,
    )


@functools.cache
def qwen_fim_tokenizer() -> PreTrainedTokenizerFast:
    """A Qwen2.5-Coder-like tokenizer with FIM tokens (no BOS)."""
    return PreTrainedTokenizerFast(
        tokenizer_object=_train(QWEN_SPECIALS),
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=QWEN_SPECIALS[1:],
        chat_template=CHATML_TEMPLATE,
    )


def llama3() -> Tokenizer:
    """The Llama 3 test tokenizer behind the backend's Tokenizer."""
    return Tokenizer(llama3_tokenizer(), name="test-llama3")


def qwen_fim() -> Tokenizer:
    """The Qwen-FIM test tokenizer behind the backend's Tokenizer."""
    return Tokenizer(qwen_fim_tokenizer(), name="test-qwen-fim")
