"""Sublime Text command `teampilot_ask`: ask teampilot a question about the cursor or selection.

Copy to Packages/User/. It reads the question in an input panel, then runs the LSP package's
`lsp_execute` with the server command `teampilot.ask` (the LSP package fills in $file_uri,
$position and $range).
"""

import sublime_plugin


class TeampilotAskCommand(sublime_plugin.TextCommand):
    """Prompt for a question and send it to the teampilot language server."""

    def run(self, edit):
        self.view.window().show_input_panel("Ask teampilot:", "", self.on_done, None, None)

    def on_done(self, question):
        if not question.strip():
            return
        selection = self.view.sel()
        where = ("range", "$range") if selection and not selection[0].empty() else ("position", "$position")
        argument = {"uri": "$file_uri", where[0]: where[1], "question": question}
        self.view.run_command(
            "lsp_execute",
            {"session_name": "teampilot", "command_name": "teampilot.ask", "command_args": [argument]},
        )
