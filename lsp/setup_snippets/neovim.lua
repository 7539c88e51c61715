-- teampilot for Neovim 0.7 and newer: inline completion (0.12), the completion fallback (every
-- version), code actions and questions about the code.
-- Save as ~/.config/nvim/plugin/teampilot.lua, or `python -m lsp setup neovim --write` does it.
-- Override without editing: vim.g.teampilot = { settings = { backend = { url = "..." } }, cmd = { ... } }
-- set before this file loads.

local config = {
  cmd = { "{{PYTHON}}", "-m", "lsp", "--stdio" },
  settings = {
    backend = { url = "{{BACKEND_URL}}", apiKey = "{{API_KEY}}", model = "{{MODEL}}" },
    completion = { enabled = true, debounceMs = 75, maxTokens = 128, timeoutMs = 5000 },
    -- acceptance events for the team's usage report (counts only, never code or paths)
    usage = { enabled = true, dismissAfterMs = 10000 },
  },
  filetypes = {
    "python", "javascript", "javascriptreact", "typescript", "typescriptreact",
    "go", "rust", "java", "c", "cpp", "lua", "sh", "ruby", "php", "kotlin", "scala", "cs",
  },
  root_markers = { ".git", "pyproject.toml", "setup.py", "package.json", "go.mod", "Cargo.toml", "pom.xml", "build.gradle" },
}
if type(vim.g.teampilot) == "table" then
  local user = vim.g.teampilot
  config.settings = vim.tbl_deep_extend("force", config.settings, user.settings or {})
  config.cmd = user.cmd or config.cmd
  config.filetypes = user.filetypes or config.filetypes
end

local nvim_011 = vim.fn.has("nvim-0.11") == 1

-- client:request() is a method from 0.11 on; client.request() before.
local function request(client, method, params, handler, bufnr)
  if nvim_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function teampilot_client(bufnr)
  local clients = vim.lsp.get_clients and vim.lsp.get_clients({ bufnr = bufnr }) or vim.lsp.buf_get_clients(bufnr)
  for _, client in pairs(clients) do
    if client.name == "teampilot" then
      return client
    end
  end
  return nil
end

-- Ask a question about the code at the cursor (or the lines of a :'<,'>TeampilotAsk range).
-- The answer opens as a Markdown file (window/showDocument) or arrives as a message.
local function ask(opts)
  local bufnr = vim.api.nvim_get_current_buf()
  local client = teampilot_client(bufnr)
  if not client then
    vim.notify("teampilot: the language server is not attached to this buffer", vim.log.levels.WARN)
    return
  end
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  local argument = { uri = params.textDocument.uri }
  if opts and opts.range and opts.range > 0 then
    argument.range = { start = { line = opts.line1 - 1, character = 0 }, ["end"] = { line = opts.line2, character = 0 } }
  else
    argument.position = params.position
  end
  local function send(question)
    if not question or question == "" then
      return
    end
    argument.question = question
    request(client, "workspace/executeCommand", { command = "teampilot.ask", arguments = { argument } }, function(err)
      if err then
        vim.notify("teampilot: " .. tostring(err.message or err), vim.log.levels.ERROR)
      end
    end, bufnr)
  end
  if opts and opts.args and opts.args ~= "" then
    send(opts.args)
  else
    vim.ui.input({ prompt = "Ask teampilot: " }, send)
  end
end

-- teampilot/status: kept in g:teampilot_status for your statusline, errors shown once each.
local last_error = nil
local handlers = {
  ["teampilot/status"] = function(_, result)
    vim.g.teampilot_status = result
    if result and result.state == "error" and result.message ~= last_error then
      last_error = result.message
      vim.notify("teampilot: " .. tostring(result.message), vim.log.levels.WARN)
    elseif result and result.state == "ok" then
      last_error = nil
    end
  end,
}

local function on_attach(client, bufnr)
  -- Completion fallback: <C-x><C-o> everywhere; on 0.11 also as you type (0.12 shows ghost text
  -- instead, so the menu is not doubled).
  vim.bo[bufnr].omnifunc = "v:lua.vim.lsp.omnifunc"
  if nvim_011 and vim.lsp.completion and not vim.lsp.inline_completion then
    vim.lsp.completion.enable(true, client.id, bufnr, { autotrigger = true })
  end
  -- Native inline completion (ghost text) on 0.12+: <Tab> accepts the whole suggestion,
  -- <M-]> / <M-[> cycle through the candidates. Accepting runs the item's teampilot.accepted
  -- command (Neovim executes an item's command after inserting it), which the usage report counts.
  if vim.lsp.inline_completion then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
    vim.keymap.set("i", "<Tab>", function()
      if not vim.lsp.inline_completion.get() then
        return "<Tab>"
      end
    end, { buffer = bufnr, expr = true, replace_keycodes = true, desc = "teampilot: accept suggestion" })
    local cycle = vim.lsp.inline_completion.select or vim.lsp.inline_completion.jump
    if cycle then
      vim.keymap.set("i", "<M-]>", function() cycle({ count = 1 }) end, { buffer = bufnr, desc = "teampilot: next suggestion" })
      vim.keymap.set("i", "<M-[>", function() cycle({ count = -1 }) end, { buffer = bufnr, desc = "teampilot: previous suggestion" })
    end
  end
  -- Code actions (explain, tests, implement, document, fix, translate) and questions.
  vim.keymap.set("n", "<leader>tc", vim.lsp.buf.code_action, { buffer = bufnr, desc = "teampilot: code actions" })
  if nvim_011 or vim.fn.has("nvim-0.8") == 1 then
    vim.keymap.set("x", "<leader>tc", vim.lsp.buf.code_action, { buffer = bufnr, desc = "teampilot: code actions" })
  else
    vim.keymap.set("x", "<leader>tc", ":<C-u>lua vim.lsp.buf.range_code_action()<CR>", { buffer = bufnr, silent = true })
  end
  vim.keymap.set("n", "<leader>ta", ask, { buffer = bufnr, desc = "teampilot: ask about this code" })
  vim.keymap.set("x", "<leader>ta", ":TeampilotAsk<CR>", { buffer = bufnr, desc = "teampilot: ask about the selection" })
end

vim.api.nvim_create_user_command("TeampilotAsk", ask, { nargs = "?", range = true, desc = "Ask teampilot about this code" })

local function client_config(root_dir)
  return {
    name = "teampilot",
    cmd = config.cmd,
    root_dir = root_dir,
    init_options = config.settings, -- bare, as the server expects it
    settings = { teampilot = config.settings }, -- for workspace/configuration and didChangeConfiguration
    handlers = handlers,
    on_attach = on_attach,
  }
end

if nvim_011 then
  -- 0.11+: the built-in configuration API.
  local cfg = client_config(nil)
  cfg.filetypes = config.filetypes
  cfg.root_markers = config.root_markers
  vim.lsp.config("teampilot", cfg)
  vim.lsp.enable("teampilot")
  return
end

local function find_root(bufnr)
  local path = vim.api.nvim_buf_get_name(bufnr)
  local dir = path ~= "" and vim.fn.fnamemodify(path, ":p:h") or vim.fn.getcwd()
  for _, marker in ipairs(config.root_markers) do
    local found = vim.fn.finddir(marker, dir .. ";")
    if found == "" then
      found = vim.fn.findfile(marker, dir .. ";")
    end
    if found ~= "" then
      local full = (vim.fn.fnamemodify(found, ":p"):gsub("/+$", ""))
      return vim.fn.fnamemodify(full, ":h")
    end
  end
  return dir
end

local group = vim.api.nvim_create_augroup("teampilot", { clear = true })
local client_ids = {} -- 0.7: one client per root folder

local function attach(bufnr)
  if vim.bo[bufnr].buftype ~= "" then
    return
  end
  local root = find_root(bufnr)
  if vim.lsp.start then
    -- 0.8 to 0.10: vim.lsp.start reuses a running client with the same name and root.
    vim.lsp.start(client_config(root), { bufnr = bufnr })
    return
  end
  -- 0.7: no vim.lsp.start; start one client per root and attach buffers to it.
  local id = client_ids[root]
  local running = id and vim.lsp.get_client_by_id(id)
  if not running or running.is_stopped() then
    id = vim.lsp.start_client(client_config(root))
    client_ids[root] = id
  end
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
end

vim.api.nvim_create_autocmd("FileType", {
  group = group,
  pattern = config.filetypes,
  callback = function(args)
    attach(args.buf)
  end,
})
