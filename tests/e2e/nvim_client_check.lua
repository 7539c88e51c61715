-- Drives a real headless Neovim through the shipped teampilot setup (editors/neovim/teampilot.lua,
-- loaded with -u): opens a file, waits for the language server to attach, then asks for the completion
-- fallback (the request omnifunc sends), a raw textDocument/inlineCompletion, the code actions, and
-- runs teampilot.ask. Everything it saw goes to $TEAMPILOT_E2E_OUT as JSON; then Neovim quits.
local out_path = assert(os.getenv("TEAMPILOT_E2E_OUT"))
local file = assert(os.getenv("TEAMPILOT_E2E_FILE"))
local line = tonumber(os.getenv("TEAMPILOT_E2E_LINE")) -- 0-based
local timeout = tonumber(os.getenv("TEAMPILOT_E2E_TIMEOUT_MS") or "20000")
local results = { nvim = vim.version(), messages = {}, shown_documents = {} }

local function finish()
  vim.fn.writefile({ vim.fn.json_encode(results) }, out_path)
  vim.cmd("qall!")
end

local ok, err = pcall(function()
  -- Record what the server shows the user.
  local show_message = vim.lsp.handlers["window/showMessage"]
  vim.lsp.handlers["window/showMessage"] = function(e, result, ctx, cfg)
    table.insert(results.messages, result)
    if show_message then
      return show_message(e, result, ctx, cfg)
    end
  end
  vim.lsp.handlers["window/showDocument"] = function(_, result)
    table.insert(results.shown_documents, result)
    return { success = true }
  end

  vim.cmd("edit " .. vim.fn.fnameescape(file))
  if vim.bo.filetype == "" then
    vim.bo.filetype = "python"
  end
  local bufnr = vim.api.nvim_get_current_buf()
  local function clients()
    if vim.lsp.get_clients then
      return vim.lsp.get_clients({ bufnr = bufnr })
    end
    return vim.tbl_values(vim.lsp.buf_get_clients(bufnr))
  end
  local attached = vim.wait(timeout, function()
    local c = clients()[1]
    return c ~= nil and c.server_capabilities ~= nil
  end, 20)
  results.attached = attached
  if not attached then
    error("the teampilot language server did not attach within " .. timeout .. " ms")
  end
  local client = clients()[1]
  results.client_name = client.name
  results.server_capabilities = client.server_capabilities
  results.init_options = client.config.init_options

  -- The end of the given line (the blank body of a function), where insert mode's cursor would be;
  -- normal mode cannot put the cursor past the last character, so the column is computed.
  local text = vim.api.nvim_buf_get_lines(bufnr, line, line + 1, false)[1] or ""
  vim.api.nvim_win_set_cursor(0, { line + 1, #text })
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  local utf16
  if client.offset_encoding == "utf-8" then
    utf16 = #text
  elseif vim.fn.has("nvim-0.11") == 1 then
    utf16 = vim.str_utfindex(text, "utf-16")
  else
    utf16 = select(2, vim.str_utfindex(text))
  end
  params.position = { line = line, character = utf16 }
  results.position = params.position

  -- 1. the completion fallback, exactly the request vim.lsp.omnifunc sends
  local completion = vim.lsp.buf_request_sync(bufnr, "textDocument/completion", params, timeout)
  results.completion = completion and completion[client.id] or { error = "timeout" }

  -- 2. a raw inline completion request (LSP 3.18; 0.12 sends it natively)
  local inline_params = vim.deepcopy(params)
  inline_params.context = { triggerKind = 1 }
  local inline = vim.lsp.buf_request_sync(bufnr, "textDocument/inlineCompletion", inline_params, timeout)
  results.inline = inline and inline[client.id] or { error = "timeout" }

  -- 3. the code actions at the cursor
  local action_params = {
    textDocument = params.textDocument,
    range = { start = params.position, ["end"] = params.position },
    context = { diagnostics = {} },
  }
  if client.server_capabilities.codeActionProvider then
    local actions = vim.lsp.buf_request_sync(bufnr, "textDocument/codeAction", action_params, timeout)
    results.code_actions = actions and actions[client.id] or { error = "timeout" }
  else
    results.code_actions = { result = {}, note = "server offers no code actions" }
  end

  -- 4. teampilot.ask through the shipped :TeampilotAsk command (the question as its argument,
  --    as vim.ui.input would hand it over); wait for the answer to be shown.
  local commands = (client.server_capabilities.executeCommandProvider or {}).commands or {}
  results.ask_offered = vim.tbl_contains(commands, "teampilot.ask")
  local question = os.getenv("TEAMPILOT_E2E_ASK") or ""
  if question ~= "" and results.ask_offered then
    vim.cmd("TeampilotAsk " .. question)
    results.ask_answered = vim.wait(timeout, function()
      return #results.shown_documents > 0 or #results.messages > 0
    end, 20)
  end
  results.status = vim.g.teampilot_status
end)

if not ok then
  results.error = tostring(err)
end
finish()
