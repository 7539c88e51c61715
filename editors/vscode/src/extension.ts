// teampilot for VS Code: starts the teampilot language server (`python -m lsp`) and wires what plain
// LSP cannot do by itself: an input box for questions (teampilot.ask) and a status bar item fed by the
// server's `teampilot/status` notification, and acceptance reporting (teampilot/didShowCompletion when a
// suggestion is handed to VS Code, teampilot/didPartiallyAcceptCompletion when the next word or line of it
// is accepted; a whole accept runs the item's own teampilot.accepted command). Completions and code
// actions come from the language client.
import * as vscode from "vscode";
import {
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

/** The settings object the language server expects (docs/CONTRACTS.md): bare in initializationOptions. */
interface TeampilotSettings {
  backend: { url: string; apiKey: string; model: string };
  completion: { enabled: boolean; debounceMs: number; maxTokens: number; timeoutMs: number };
  exclude: string[];
  usage: { enabled: boolean; dismissAfterMs: number };
}

/** The suggestion last handed to VS Code: what a partial accept is measured against. */
interface ShownSuggestion {
  completionId: string;
  uri: string;
  offset: number;
  length: number;
}

/** Payload of the server's `teampilot/status` notification ("inactive": the file is excluded). */
interface StatusParams {
  state: "ok" | "loading" | "error" | "inactive";
  message: string;
  model: string | null;
}

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem | undefined;
let lastShown: ShownSuggestion | undefined;

/** Reads the `teampilot.*` settings into the shape the language server takes. */
function readSettings(): TeampilotSettings {
  const config = vscode.workspace.getConfiguration("teampilot");
  return {
    backend: {
      url: config.get<string>("backend.url", "http://127.0.0.1:8000/v1"),
      apiKey: config.get<string>("backend.apiKey", ""),
      model: config.get<string>("backend.model", ""),
    },
    completion: {
      enabled: config.get<boolean>("completion.enabled", true),
      debounceMs: config.get<number>("completion.debounceMs", 75),
      maxTokens: config.get<number>("completion.maxTokens", 128),
      timeoutMs: config.get<number>("completion.timeoutMs", 5000),
    },
    exclude: config.get<string[]>("exclude", []),
    usage: {
      enabled: config.get<boolean>("usage.enabled", true),
      dismissAfterMs: config.get<number>("usage.dismissAfterMs", 10000),
    },
  };
}

/** The completion id a server item carries in its teampilot.accepted command, if any. */
function completionIdOf(item: vscode.InlineCompletionItem): string | undefined {
  const command = item.command;
  if (!command || command.command !== "teampilot.accepted" || !command.arguments?.length) {
    return undefined;
  }
  const argument = command.arguments[0] as { completionId?: unknown };
  return typeof argument?.completionId === "string" ? argument.completionId : undefined;
}

/** Reports the first suggestion handed to VS Code as shown (VS Code displays the first one). */
function reportShown(
  document: vscode.TextDocument,
  position: vscode.Position,
  result: vscode.InlineCompletionItem[] | vscode.InlineCompletionList | null | undefined,
): void {
  const items = Array.isArray(result) ? result : result?.items ?? [];
  const first = items[0];
  const completionId = first ? completionIdOf(first) : undefined;
  if (!first || !completionId || !client) {
    return;
  }
  const text = typeof first.insertText === "string" ? first.insertText : first.insertText.value;
  lastShown = { completionId, uri: document.uri.toString(), offset: document.offsetAt(position), length: text.length };
  void client.sendNotification("teampilot/didShowCompletion", { completionId });
}

/** Accepts the next word or line of the inline suggestion, then reports how much of it is accepted so far. */
async function acceptPart(unit: "Word" | "Line"): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  await vscode.commands.executeCommand(`editor.action.inlineSuggest.acceptNext${unit}`);
  const shown = lastShown;
  if (!editor || !client || !shown || editor.document.uri.toString() !== shown.uri) {
    return;
  }
  const accepted = Math.min(editor.document.offsetAt(editor.selection.active) - shown.offset, shown.length);
  if (accepted > 0) {
    void client.sendNotification("teampilot/didPartiallyAcceptCompletion", {
      completionId: shown.completionId,
      acceptedLength: accepted,
    });
  }
}

/** Builds the language client that runs `<pythonPath> -m lsp` over stdio. */
function createClient(output: vscode.LogOutputChannel): LanguageClient {
  const python = vscode.workspace.getConfiguration("teampilot").get<string>("pythonPath", "python3");
  const serverOptions: ServerOptions = {
    command: python,
    args: ["-m", "lsp", "--stdio"],
    transport: TransportKind.stdio,
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    initializationOptions: readSettings(),
    // The client sends workspace/didChangeConfiguration with {"teampilot": {...}} whenever a
    // teampilot.* setting changes, and answers workspace/configuration for the section.
    synchronize: { configurationSection: "teampilot" },
    outputChannel: output,
    middleware: {
      // VS Code shows the suggestion as ghost text (inline completion); the server's completion
      // fallback is for editors without it, so do not repeat it in the suggest widget.
      provideCompletionItem: () => undefined,
      // Every suggestion handed to VS Code is reported as shown; accepting it whole runs the item's
      // teampilot.accepted command (the language client forwards it to the server).
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        const result = await next(document, position, context, token);
        reportShown(document, position, result);
        return result;
      },
    },
  };
  const languageClient = new LanguageClient("teampilot", "teampilot", serverOptions, clientOptions);
  // Inline completion is LSP 3.18; older vscode-languageclient releases only offer it as a proposed
  // feature, so turn those on (a no-op where the feature is already built in).
  languageClient.registerProposedFeatures();
  languageClient.onNotification("teampilot/status", (params: StatusParams) => showStatus(params));
  return languageClient;
}

/** Shows the server's state in the status bar. */
function showStatus(params: StatusParams): void {
  if (!statusItem) {
    return;
  }
  const icons = { ok: "$(sparkle)", loading: "$(sync~spin)", inactive: "$(circle-slash)", error: "$(warning)" };
  const icon = icons[params.state] ?? "$(warning)";
  statusItem.text = `${icon} teampilot`;
  const model = params.model ? `\n\nmodel: ${params.model}` : "";
  statusItem.tooltip = `${params.message || params.state}${model}`;
  statusItem.backgroundColor =
    params.state === "error" ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
  statusItem.show();
}

/** Asks for a question and sends it, with the cursor or selection, to the server's teampilot.ask. */
async function askQuestion(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor || !client) {
    vscode.window.showWarningMessage("teampilot: open a file first.");
    return;
  }
  const question = await vscode.window.showInputBox({
    title: "teampilot: ask about this code",
    prompt: editor.selection.isEmpty ? "About the code at the cursor" : "About the selected code",
    placeHolder: "Why does this loop never end?",
    ignoreFocusOut: true,
  });
  if (!question) {
    return;
  }
  const uri = editor.document.uri.toString();
  const selection = editor.selection;
  const argument = selection.isEmpty
    ? { uri, question, position: { line: selection.active.line, character: selection.active.character } }
    : {
        uri,
        question,
        range: {
          start: { line: selection.start.line, character: selection.start.character },
          end: { line: selection.end.line, character: selection.end.character },
        },
      };
  // The answer arrives as a Markdown document the server opens with window/showDocument.
  await client.sendRequest(ExecuteCommandRequest.type, { command: "teampilot.ask", arguments: [argument] });
}

/** Activates the extension: status bar, commands, then the language server. */
export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel("teampilot", { log: true });
  statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  statusItem.command = "teampilot.showLog";
  showStatus({ state: "loading", message: "starting the language server", model: null });
  context.subscriptions.push(
    output,
    statusItem,
    vscode.commands.registerCommand("teampilot.askQuestion", askQuestion),
    vscode.commands.registerCommand("teampilot.showCodeActions", () =>
      vscode.commands.executeCommand("editor.action.refactor"),
    ),
    vscode.commands.registerCommand("teampilot.showLog", () => output.show()),
    vscode.commands.registerCommand("teampilot.acceptNextWord", () => acceptPart("Word")),
    vscode.commands.registerCommand("teampilot.acceptNextLine", () => acceptPart("Line")),
    vscode.commands.registerCommand("teampilot.restartServer", async () => {
      await client?.restart();
    }),
  );
  client = createClient(output);
  try {
    await client.start();
  } catch (error) {
    showStatus({ state: "error", message: `language server failed to start: ${String(error)}`, model: null });
    vscode.window.showErrorMessage(
      "teampilot: the language server did not start. Set teampilot.pythonPath to a Python with teampilot installed.",
    );
  }
}

/** Stops the language server. */
export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}
