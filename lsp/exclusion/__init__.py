"""Content exclusion: the one place that answers "may this file / this text be sent to the backend?".

- :mod:`lsp.exclusion.rules`: which files are excluded (built-in patterns, ``.gitignore``,
  ``.teampilotignore`` at the root or in any folder, the ``exclude`` setting), and by which rule.
- :mod:`lsp.exclusion.secrets`: credentials in any text sent are masked as ``<secret:KIND>``; a
  suggestion that brings one back is dropped, an edit gets the user's own values back.

The language server checks a document's path at every entry point that reads code (completion,
code actions, ``teampilot.ask``), the workspace index never holds an excluded file, and the backend
client masks every request body it sends (``lsp/client.py``), so no path around masking exists.
"""

from lsp.exclusion.rules import BUILTIN_PATTERNS, IGNORE_FILE_NAMES, Decision, ExclusionRules
from lsp.exclusion.secrets import (
    PLACEHOLDER_MARK,
    MaskedText,
    MaskRecord,
    Secret,
    SecretMasker,
    find_line_secrets,
    placeholder,
    restore_secrets,
    reveals_secret,
)

__all__ = [
    "BUILTIN_PATTERNS", "IGNORE_FILE_NAMES", "PLACEHOLDER_MARK", "Decision", "ExclusionRules", "MaskRecord",
    "MaskedText", "Secret", "SecretMasker", "find_line_secrets", "placeholder", "restore_secrets", "reveals_secret",
]
