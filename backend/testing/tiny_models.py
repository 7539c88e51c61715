"""Tiny local test models, built once and cached: `ensure_tiny_model("llama3" | "qwen-fim") -> Path`.

* ``tiny-llama3``: a `LlamaForCausalLM` in the Llama 3 format: a byte-level BPE trained here, the
  Llama 3 special tokens, Meta-Llama-3-8B-Instruct's chat template, and (as in Meta's first release)
  an eos of ``<|end_of_text|>`` only, in both tokenizer_config.json and generation_config.json. It
  is trained for about a minute on synthetic chat about code, so that in chat format it answers
  briefly and then emits ``<|eot_id|>``: a server that does not stop on ``<|eot_id|>`` by itself
  runs to ``max_tokens``.
* ``tiny-qwen-fim``: a `Qwen2ForCausalLM` with Qwen2.5-Coder's FIM and ChatML special tokens and a
  ChatML template, briefly trained on FIM samples; it exercises native FIM rendering.

Both have head size 64 (vLLM's CPU attention) and float32 safetensors weights. They live under
``${TEAMPILOT_CACHE:-~/.cache/teampilot}/models/`` and are rebuilt only when the recipe changes
(a stamp file records the recipe version). Builds are atomic (temporary folder, then rename) and
serialised between processes by a file lock. Torch, transformers and tokenizers are imported
lazily: importing this module is cheap.
"""

from __future__ import annotations

import importlib
import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backend.model_cache import build_once, cache_root, read_stamp_file

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: Bump when anything below changes what gets built: a stale cached model is then rebuilt.
RECIPE_VERSION = "2026-11-25.3"
#: `which` -> folder name under the models cache.
TINY_MODELS = {"llama3": "tiny-llama3", "qwen-fim": "tiny-qwen-fim"}
STAMP_FILE = "teampilot-tiny-model.json"

#: Meta-Llama-3-8B-Instruct's chat template, verbatim from its tokenizer_config.json.
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
#: Llama 3's special tokens in Meta's order (ids follow the BPE vocabulary, as in the real model);
#: 128008 was `<|reserved_special_token_4|>` in Llama 3 and became `<|eom_id|>` in Llama 3.1.
LLAMA3_SPECIAL_TOKENS = (
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>",
    "<|reserved_special_token_2|>",
    "<|reserved_special_token_3|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eom_id|>",
    "<|eot_id|>",
    *(f"<|reserved_special_token_{i}|>" for i in range(5, 13)),
)
#: Qwen2.5-Coder's special tokens (ChatML + FIM + repository markers).
#: Llama 3's pre-tokenizer split (also what Qwen2 uses, give or take single digits), from its tokenizer.json.
LLAMA3_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Recipe:
    """Sizes and training budget of one tiny model."""

    bpe_vocab: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_positions: int
    train_steps: int
    batch: int
    lr: float
    seed: int = 1234


LLAMA3_RECIPE = Recipe(
    bpe_vocab=2048, hidden=128, layers=2, heads=2, intermediate=384, max_positions=4096,
    train_steps=600, batch=16, lr=3e-3,
)
QWEN_FIM_RECIPE = Recipe(
    bpe_vocab=2048, hidden=128, layers=2, heads=2, intermediate=384, max_positions=4096,
    train_steps=40, batch=16, lr=4e-3,
)


def model_path(which: str) -> Path:
    """Where the tiny model `which` ("llama3" | "qwen-fim") lives (built or not)."""
    if which not in TINY_MODELS:
        raise ValueError(f"unknown tiny model {which!r}; choose one of {sorted(TINY_MODELS)}")
    return cache_root() / "models" / TINY_MODELS[which]


def recipe_version() -> str:
    """RECIPE_VERSION plus a hash of the recipes, corpora and templates: changed data rebuilds.

    Bump RECIPE_VERSION by hand when the build *code* changes what gets built.
    """
    import hashlib

    parts = (
        LLAMA3_RECIPE, QWEN_FIM_RECIPE, LLAMA3_CHAT_TEMPLATE, CHATML_TEMPLATE, LLAMA3_SPECIAL_TOKENS,
        QWEN_SPECIAL_TOKENS, LLAMA3_SPLIT_PATTERN, _LANGS, _TASKS, _ASK, _SNIPPETS, _WRITE, _SMALL_TALK,
        _SYSTEMS, _EVAL_QUESTIONS, _CODE_FILES,
    )
    digest = hashlib.sha256(repr(parts).encode()).hexdigest()[:12]
    return f"{RECIPE_VERSION}+{digest}"


def read_stamp(path: Path) -> dict[str, Any] | None:
    """The build stamp of a model folder (recipe version, build time, eot rate), or None."""
    return read_stamp_file(path, STAMP_FILE)


def is_current(path: Path) -> bool:
    """Whether `path` holds a complete model built by the current recipe."""
    stamp = read_stamp(path)
    return stamp is not None and stamp.get("recipe") == recipe_version()


def ensure_tiny_model(which: str, *, force: bool = False, progress: Progress | None = None) -> Path:
    """Return the folder of tiny model `which`, building it first if missing, stale or forced."""
    dest = model_path(which)
    if not force and is_current(dest):
        return dest
    say = progress or (lambda msg: logger.info("%s", msg))

    def build(tmp: Path) -> dict[str, Any]:
        say(f"building {dest.name} into {dest}")
        started = time.monotonic()
        builder = _build_llama3 if which == "llama3" else _build_qwen_fim
        with _one_torch_thread():
            report = builder(tmp, say)
        report.update(recipe=recipe_version(), which=which, build_s=round(time.monotonic() - started, 1))
        return report

    report = build_once(dest, lambda: not force and is_current(dest), build, STAMP_FILE)
    if report is not None:
        say(f"built {dest.name} in {report['build_s']} s: {dest}")
    return dest


@contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Build with one torch thread: a model this small gains nothing from more, and on a shared,
    busy machine two OpenMP threads made each training step about 9x slower (measured)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# Synthetic corpora (deterministic for a given seed)

_LANGS = ("Python", "JavaScript", "TypeScript", "Go", "Rust", "Java", "C", "C++")
_TASKS = (
    ("reverse a list", "Iterate from the end, or use the built-in reverse of {lang}."),
    ("read a file", "Open the file, read it, and close it when done."),
    ("write to a file", "Open the file for writing and write the text."),
    ("sort an array", "Use the standard sort of {lang}; pass a key or comparator if needed."),
    ("parse JSON", "Use the JSON library of {lang} to decode the string."),
    ("join strings", "Use the join function of {lang}."),
    ("split a string", "Call split with the separator."),
    ("check if a key exists in a map", "Look the key up; {lang} tells you if it is missing."),
    ("handle errors", "Check each error where it happens and return it with context."),
    ("write a unit test", "Write a small test that calls the function and checks the result."),
    ("make an HTTP request", "Use an HTTP client library and check the status code."),
    ("format a string", "Use string formatting with placeholders."),
    ("define a class", "Declare the type with its fields and methods."),
    ("loop over a dictionary", "Iterate over its key and value pairs."),
    ("remove duplicates", "Put the items in a set, or keep the first of each."),
    ("find the maximum", "Use max, or keep the largest value in a loop."),
    ("convert a string to an int", "Parse it with the integer parser and handle bad input."),
    ("copy a list", "Make a shallow copy with a slice or a copy method."),
    ("measure time", "Read a monotonic clock before and after."),
    ("run a command", "Start the process, wait for it, and check its exit code."),
    ("get the length of a string", "Ask the string for its length."),
    ("merge two lists", "Concatenate them into a new list."),
    ("use a lambda", "Write a small anonymous function inline."),
    ("read environment variables", "Read them from the process environment with a default."),
    ("create a thread", "Start a thread with the function to run, then join it."),
    ("log a message", "Use the logging library instead of print."),
    ("rename a variable", "Rename it everywhere it is used; your editor can do it."),
    ("fix an off-by-one error", "Check the loop bounds: stop before the length."),
    ("speed up a loop", "Move work out of the loop and avoid repeated lookups."),
    ("document a function", "Write a short docstring that says what it returns."),
)
_ASK = (
    "How do I {task} in {lang}?",
    "how to {task} in {lang}",
    "What is the best way to {task} in {lang}?",
    "Can you show me how to {task} in {lang}?",
    "Quick question: how can I {task} with {lang}?",
    "In {lang}, how do I {task}?",
    "I need to {task} in {lang}. Any tips?",
)
_SNIPPETS = (
    ("def add(a, b):\n    return a + b", "It returns the sum of a and b."),
    ("def is_even(n):\n    return n % 2 == 0", "It checks whether n is even."),
    ("function greet(name) {\n  return `Hello, ${name}`;\n}", "It builds a greeting for name."),
    ("for i in range(10):\n    print(i)", "It prints the numbers 0 to 9."),
    ("x = [n * n for n in nums]", "It makes a list of the squares of nums."),
    ("func Max(a, b int) int {\n\tif a > b {\n\t\treturn a\n\t}\n\treturn b\n}", "It returns the larger of a and b."),
    ("def read(path):\n    with open(path) as f:\n        return f.read()", "It reads a whole file and returns its text."),
    ("const total = items.reduce((s, x) => s + x, 0);", "It adds up all the items."),
    ("fn square(x: i32) -> i32 {\n    x * x\n}", "It returns x squared."),
    ("if not items:\n    return None", "It returns None when the list is empty."),
)
_WRITE = (
    ("a function that adds two numbers", "def add(a, b):\n    return a + b"),
    ("a function that returns the square of x", "def square(x):\n    return x * x"),
    ("a function that checks if a number is even", "def is_even(n):\n    return n % 2 == 0"),
    ("a function that reverses a string", "def reverse(s):\n    return s[::-1]"),
    ("a function that returns the first item", "def first(items):\n    return items[0]"),
    ("a function that counts words", "def count_words(text):\n    return len(text.split())"),
    ("a function that greets a user", "def greet(name):\n    return f\"Hello, {name}!\""),
    ("a function that doubles each number", "def double(nums):\n    return [n * 2 for n in nums]"),
)
_SMALL_TALK = (
    ("Hi", "Hello! How can I help with your code?"),
    ("Hello", "Hi! What are you working on?"),
    ("Thanks!", "You are welcome."),
    ("Who are you?", "I am a small coding assistant."),
    ("Say hello.", "Hello!"),
    ("Are you there?", "Yes. How can I help?"),
)
_SYSTEMS = (
    "You are a helpful coding assistant.",
    "You are a concise assistant. Answer briefly.",
    "You are an expert programmer.",
)
#: Held out from training: used to measure how reliably the model ends its turn.
_EVAL_QUESTIONS = (
    "How do I reverse a string in Kotlin?",
    "What is a closure?",
    "Explain this code:\n```python\ndef mul(a, b):\n    return a * b\n```",
    "Write a function that subtracts two numbers.",
    "How can I compress a file in Ruby?",
    "Tell me a joke.",
    "What does git rebase do?",
    "Complete the code: def fib(n):",
    "Why is my loop slow in Python?",
    "hello there",
    "How do I {task} in Swift?",
    "What is the best way to sort a dictionary by value?",
    "Fill in the missing code between the prefix and the suffix.",
    "Summarise what this file does.",
    "Can you help me debug a segfault in C?",
    "Is Rust faster than Go?",
)
_CODE_FILES = (
    "import os\nimport sys\n\n\ndef main(argv):\n    path = argv[1]\n    with open(path) as f:\n        for line in f:\n            print(line.rstrip())\n    return 0\n\n\nif __name__ == \"__main__\":\n    sys.exit(main(sys.argv))\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):\n        self.items.append(item)\n\n    def pop(self):\n        return self.items.pop()\n\n    def is_empty(self):\n        return not self.items\n",
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\n\ndef factorial(n):\n    result = 1\n    for i in range(2, n + 1):\n        result *= i\n    return result\n",
    "function sum(xs) {\n  let total = 0;\n  for (const x of xs) {\n    total += x;\n  }\n  return total;\n}\n\nmodule.exports = { sum };\n",
    "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tfor i := 0; i < 3; i++ {\n\t\tfmt.Println(i)\n\t}\n}\n",
    "def binary_search(items, target):\n    lo, hi = 0, len(items)\n    while lo < hi:\n        mid = (lo + hi) // 2\n        if items[mid] < target:\n            lo = mid + 1\n        else:\n            hi = mid\n    return lo\n",
)


def _stdlib_code(max_files: int = 40) -> list[str]:
    """Source text of a fixed list of standard-library modules (more text for the BPE and the LM)."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    names = (
        "textwrap.py", "string.py", "argparse.py", "json/encoder.py", "json/decoder.py", "shlex.py",
        "fnmatch.py", "heapq.py", "bisect.py", "calendar.py", "csv.py", "dataclasses.py", "difflib.py",
        "glob.py", "gzip.py", "hashlib.py", "ipaddress.py", "locale.py", "netrc.py", "operator.py",
        "pprint.py", "queue.py", "random.py", "sched.py", "secrets.py", "statistics.py", "tempfile.py",
        "timeit.py", "tokenize.py", "uuid.py", "weakref.py", "zipapp.py",
    )
    texts = []
    for name in names[:max_files]:
        try:
            texts.append((root / name).read_text(encoding="utf-8"))
        except OSError:
            continue
    return texts


def _chunks(texts: Sequence[str], lines: int) -> list[str]:
    """Consecutive `lines`-line pieces of each text."""
    out = []
    for text in texts:
        all_lines = text.splitlines(keepends=True)
        out += ["".join(all_lines[i : i + lines]) for i in range(0, len(all_lines), lines)]
    return out


def _chat_pairs(rng: random.Random, count: int) -> list[list[tuple[str, str]]]:
    """`count` conversations as (role, content) lists; assistant turns are short."""
    conversations: list[list[tuple[str, str]]] = []
    for _ in range(count):
        turns: list[tuple[str, str]] = []
        if rng.random() < 0.3:
            turns.append(("system", rng.choice(_SYSTEMS)))
        for _turn in range(1 if rng.random() < 0.8 else 2):
            kind = rng.random()
            if kind < 0.55:
                task, answer = rng.choice(_TASKS)
                lang = rng.choice(_LANGS)
                question = rng.choice(_ASK).format(task=task, lang=lang)
                answer = answer.format(lang=lang)
            elif kind < 0.75:
                code, answer = rng.choice(_SNIPPETS)
                question = rng.choice(("Explain this code:", "What does this do?", "Explain:")) + f"\n```\n{code}\n```"
            elif kind < 0.9:
                what, code = rng.choice(_WRITE)
                question = rng.choice(("Write {w}.", "Please write {w} in Python.", "Give me {w}.")).format(w=what)
                answer = f"```python\n{code}\n```"
            else:
                question, answer = rng.choice(_SMALL_TALK)
            turns += [("user", question), ("assistant", answer)]
        conversations.append(turns)
    return conversations


def _fim_samples(rng: random.Random, count: int) -> list[tuple[str, str, str]]:
    """(prefix, middle, suffix) triples cut from the code corpus at line boundaries."""
    samples = []
    for _ in range(count):
        lines = rng.choice(_CODE_FILES).splitlines(keepends=True)
        start = rng.randrange(1, len(lines))
        end = min(len(lines), start + rng.randint(1, 2))
        samples.append(("".join(lines[:start]), "".join(lines[start:end]), "".join(lines[end:])))
    return samples


# --------------------------------------------------------------------------------------------
# Builders


def _train_tokenizer(texts: Sequence[str], vocab_size: int, specials: Sequence[str]) -> Any:
    """A byte-level BPE (GPT-2/Llama 3 style) trained on `texts`, specials appended after it."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_SPLIT_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_special_tokens(list(specials))
    return tok


def _build_llama3(dest: Path, say: Progress) -> dict[str, Any]:
    """Build tiny-llama3 into `dest`; return the report (eot rate, train loss)."""
    from tokenizers import processors

    tf: Any = importlib.import_module("transformers")  # untyped for mypy: keep it Any
    recipe = LLAMA3_RECIPE
    rng = random.Random(recipe.seed)
    conversations = _chat_pairs(rng, 3000)
    stdlib = _stdlib_code()
    code_texts = list(_CODE_FILES) * 10 + rng.sample(_chunks(stdlib, 6), 40)
    plain = [content for conv in conversations for _, content in conv] + list(_CODE_FILES) + stdlib
    say("training the byte-level BPE tokenizer")
    raw = _train_tokenizer(plain, recipe.bpe_vocab, LLAMA3_SPECIAL_TOKENS)
    bos_id = raw.token_to_id("<|begin_of_text|>")
    raw.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A",
        pair="<|begin_of_text|> $A <|begin_of_text|> $B",
        special_tokens=[("<|begin_of_text|>", bos_id)],
    )
    tokenizer = tf.PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<|begin_of_text|>",
        eos_token="<|end_of_text|>",
        model_max_length=recipe.max_positions,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = LLAMA3_CHAT_TEMPLATE
    texts = [
        tokenizer.apply_chat_template([{"role": r, "content": c} for r, c in conv], tokenize=False)
        for conv in conversations
    ]
    texts += ["<|begin_of_text|>" + code + "<|end_of_text|>" for code in code_texts]
    eos_id = tokenizer.convert_tokens_to_ids("<|end_of_text|>")
    eot_id = tokenizer.convert_tokens_to_ids("<|eot_id|>")

    config = tf.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden,
        intermediate_size=recipe.intermediate,
        num_hidden_layers=recipe.layers,
        num_attention_heads=recipe.heads,
        num_key_value_heads=recipe.heads,
        head_dim=recipe.hidden // recipe.heads,
        max_position_embeddings=recipe.max_positions,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        dtype="float32",
    )
    model, steps = _train(tf.LlamaForCausalLM, config, tokenizer, texts, recipe, eos_id, say, stress_ids=[eot_id])
    say("checking that chat answers end with <|eot_id|> (greedy)")
    eot_rate, mean_len, examples = _eot_rate(model, tokenizer, eot_id)
    say(f"eot rate {eot_rate:.0%} on {len(_EVAL_QUESTIONS)} held-out questions, mean answer {mean_len:.1f} tokens")
    # Meta's first release: eos is <|end_of_text|> only, sampling defaults as in its generation_config.
    model.generation_config = tf.GenerationConfig(
        bos_token_id=bos_id, eos_token_id=eos_id, do_sample=True, temperature=0.6, top_p=0.9,
        max_length=recipe.max_positions,
    )
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    _fix_tokenizer_config(dest, "PreTrainedTokenizerFast", LLAMA3_CHAT_TEMPLATE)
    return {
        "eot_rate": eot_rate, "mean_answer_tokens": mean_len, "vocab_size": len(tokenizer),
        "train_steps": steps, "examples": examples,
    }


def _build_qwen_fim(dest: Path, say: Progress) -> dict[str, Any]:
    """Build tiny-qwen-fim into `dest`; return the report."""
    tf: Any = importlib.import_module("transformers")
    recipe = QWEN_FIM_RECIPE
    rng = random.Random(recipe.seed)
    samples = _fim_samples(rng, 600)
    say("training the byte-level BPE tokenizer")
    raw = _train_tokenizer(list(_CODE_FILES) + _stdlib_code(), recipe.bpe_vocab, QWEN_SPECIAL_TOKENS)
    tokenizer = tf.PreTrainedTokenizerFast(
        tokenizer_object=raw,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=recipe.max_positions,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    texts = [f"<|fim_prefix|>{p}<|fim_suffix|>{s}<|fim_middle|>{m}<|endoftext|>" for p, m, s in samples]
    eos_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = tf.Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden,
        intermediate_size=recipe.intermediate,
        num_hidden_layers=recipe.layers,
        num_attention_heads=recipe.heads,
        num_key_value_heads=recipe.heads,
        max_position_embeddings=recipe.max_positions,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=True,
        bos_token_id=eos_id,
        eos_token_id=eos_id,
        dtype="float32",
    )
    model, steps = _train(tf.Qwen2ForCausalLM, config, tokenizer, texts, recipe, eos_id, say)
    model.generation_config = tf.GenerationConfig(bos_token_id=eos_id, eos_token_id=eos_id, max_length=recipe.max_positions)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    _fix_tokenizer_config(dest, "PreTrainedTokenizerFast", CHATML_TEMPLATE)
    return {"vocab_size": len(tokenizer), "train_steps": steps}


def _fix_tokenizer_config(dest: Path, tokenizer_class: str, chat_template: str) -> None:
    """Make tokenizer_config.json look like the real models' (class, template inline, no extras)."""
    path = dest / "tokenizer_config.json"
    data = json.loads(path.read_text())
    data["tokenizer_class"] = tokenizer_class
    data["chat_template"] = chat_template
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    (dest / "chat_template.jinja").unlink(missing_ok=True)


def _train(
    model_cls: Any,
    config: Any,
    tokenizer: Any,
    texts: list[str],
    recipe: Recipe,
    pad_id: int,
    say: Progress,
    *,
    stress_ids: Sequence[int] = (),
) -> tuple[Any, int]:
    """Train a fresh `model_cls(config)` on `texts` for `recipe.train_steps` steps; (model, steps).

    Predicting a token in `stress_ids` (end of turn) weighs 4x in the loss: ending the turn is
    the behaviour the tests rely on.
    """
    import torch

    torch.manual_seed(recipe.seed)
    model = model_cls(config).to(torch.float32)
    encoded = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    encoded = [ids[:128] for ids in encoded]
    order = random.Random(recipe.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.01, betas=(0.9, 0.98))
    warmup = max(1, recipe.train_steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min(1.0, (step + 1) / warmup) * max(0.05, 1.0 - step / recipe.train_steps),
    )
    model.train()
    started = time.monotonic()
    loss_value = float("nan")
    for step in range(recipe.train_steps):
        batch = order.sample(encoded, recipe.batch)
        input_ids, labels, mask = _pad_batch(batch, pad_id)
        logits = model(input_ids=input_ids, attention_mask=mask).logits[:, :-1]
        targets = labels[:, 1:]
        losses = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100, reduction="none"
        )
        weights = (targets.reshape(-1) != -100).float()
        for token_id in stress_ids:
            weights = weights * torch.where(targets.reshape(-1) == token_id, 4.0, 1.0)
        loss: Any = (losses * weights).sum() / weights.sum()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        loss_value = float(loss.detach())
        if step % 25 == 0 or step == recipe.train_steps - 1:
            say(f"  step {step + 1}/{recipe.train_steps}  loss {loss_value:.3f}  {time.monotonic() - started:.0f} s")
    model.eval()
    return model, recipe.train_steps


def _pad_batch(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-pad token lists; padding is masked out of attention and loss."""
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(ids)] = torch.tensor(ids)
        mask[row, : len(ids)] = 1
    return input_ids, labels, mask


def _eot_rate(
    model: Any, tokenizer: Any, eot_id: int, max_new_tokens: int = 64
) -> tuple[float, float, dict[str, str]]:
    """Greedy chat answers to held-out questions: (share ending in <|eot_id|>, mean length, answers)."""
    import torch

    ended, lengths, examples = 0, [], {}
    with torch.no_grad():
        for question in _EVAL_QUESTIONS:
            prompt = tokenizer.apply_chat_template(
                [{"role": "user", "content": question.format(task="parse a date")}],
                tokenize=False,
                add_generation_prompt=True,
            )
            ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False)])
            out = model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens, do_sample=False,
                eos_token_id=eot_id, pad_token_id=eot_id,
            )
            new = out[0, ids.shape[1]:].tolist()
            lengths.append(len(new))
            ended += eot_id in new
            examples[question] = tokenizer.decode(new, skip_special_tokens=False)
    return ended / len(_EVAL_QUESTIONS), sum(lengths) / len(lengths), examples
