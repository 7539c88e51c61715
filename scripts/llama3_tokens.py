"""Real Llama 3 token counts for the evals, from ``llama3-tokenizer-js`` (npm, MIT).

The language server only estimates tokens (``lsp.context.model.estimate_tokens``): the default
model's tokenizer cannot be downloaded here, and the server has no business loading one. The npm
package ships Llama 3's vocabulary and merges baked into one JavaScript file; it is fetched at run
time like the eval's packages and run by Node in one long-lived process, one JSON line per text.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from scripts.eval_packages import fetch_npm

PACKAGE = "llama3-tokenizer-js@1.2.0"

_NODE_PROGRAM = r"""
const { pathToFileURL } = await import("node:url");
const { createInterface } = await import("node:readline");
const { default: tokenizer } = await import(pathToFileURL(process.argv[1]).href);
for await (const line of createInterface({ input: process.stdin })) {
  const count = tokenizer.encode(JSON.parse(line), { bos: false, eos: false }).length;
  process.stdout.write(count + "\n");
}
"""


class Llama3Tokens:
    """Counts Llama 3 tokens of texts (no BOS/EOS) in a Node process; use as a context manager."""

    def __init__(self) -> None:
        source = fetch_npm(PACKAGE)  # its "src" folder, which the package ships
        package = next(p for p in (source, source.parent) if (p / "package.json").is_file())
        bundle = package / json.loads((package / "package.json").read_text("utf-8"))["main"]
        self._process = subprocess.Popen(
            ["node", "--input-type=module", "-e", _NODE_PROGRAM, str(bundle)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
        )

    def count(self, text: str) -> int:
        """The number of Llama 3 tokens ``text`` encodes to."""
        stdin, stdout = self._process.stdin, self._process.stdout
        if stdin is None or stdout is None:
            raise RuntimeError("the Node tokenizer process has no pipes")
        stdin.write(json.dumps(text) + "\n")
        stdin.flush()
        answer = stdout.readline()
        if not answer:
            raise RuntimeError(f"the Node tokenizer process exited ({self._process.poll()})")
        return int(answer)

    def close(self) -> None:
        """Stop the Node process."""
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=10)

    def __enter__(self) -> Llama3Tokens:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def llama3_tokens() -> Llama3Tokens | None:
    """A token counter, or ``None`` (with the reason printed) where Node or npm is missing or the
    package cannot be fetched."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        print("Llama 3 token counts: skipped (node and npm are needed to run llama3-tokenizer-js)")
        return None
    try:
        counter = Llama3Tokens()
        counter.count("def f(): pass")
    except (OSError, RuntimeError, subprocess.CalledProcessError) as error:
        print(f"Llama 3 token counts: skipped ({error})")
        return None
    return counter
