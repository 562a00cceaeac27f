-- Headless Neovim end-to-end check: open a template, attach the cutlens language server
-- through Neovim's built-in LSP client, wait for diagnostics, write them as JSON.
-- Usage: nvim --headless --clean -u NONE -l? (0.7 lacks -l): nvim --headless -u NONE \
--   -c "luafile diagnostics.lua" FILE   with env CUTLENS_PYTHON, CUTLENS_OUT, CUTLENS_WAIT_MS
local python = os.getenv("CUTLENS_PYTHON") or "python3"
local out = assert(os.getenv("CUTLENS_OUT"), "CUTLENS_OUT is not set")
local wait_ms = tonumber(os.getenv("CUTLENS_WAIT_MS") or "60000")
local want = tonumber(os.getenv("CUTLENS_WANT") or "1")
local want_source = os.getenv("CUTLENS_WANT_SOURCE")

local function count()
  local n = 0
  for _, d in ipairs(vim.diagnostic.get(0)) do
    if want_source == nil or d.source == want_source then n = n + 1 end
  end
  return n
end

local buf = vim.api.nvim_get_current_buf()
local file = vim.api.nvim_buf_get_name(buf)
local root = vim.fn.fnamemodify(file, ":h")

local client_id = vim.lsp.start_client({
  name = "cutlens",
  cmd = { python, "-m", "cutlens", "lsp" },
  root_dir = root,
  workspace_folders = { { uri = vim.uri_from_fname(root), name = "ws" } },
  init_options = { checkOn = "save" },
  handlers = { ["cutlens/status"] = function() end },
})
assert(client_id, "could not start the cutlens server")
vim.lsp.buf_attach_client(buf, client_id)

local ok = vim.wait(wait_ms, function() return count() >= want end, 100)

local result = { ok = ok, diagnostics = {} }
for _, d in ipairs(vim.diagnostic.get(buf)) do
  if want_source == nil or d.source == want_source then table.insert(result.diagnostics, {
    lnum = d.lnum, col = d.col, message = d.message, source = d.source,
    severity = d.severity,
  }) end
end
local f = assert(io.open(out, "w"))
f:write(vim.fn.json_encode(result))
f:close()
vim.lsp.stop_client(client_id)
vim.cmd("qa!")
