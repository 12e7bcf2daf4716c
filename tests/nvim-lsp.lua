-- Run by tests/lsp.rs: Neovim's built-in client starts `weft lsp` ($WEFT_BIN) on deploy/site.rhai,
-- then writes the diagnostics and the completions after `host.` to $WEFT_OUT, one a line.
local weft, out = os.getenv("WEFT_BIN"), os.getenv("WEFT_OUT")
local file = io.open(out, "w")
local function finish(text)
  file:write(text)
  file:close()
  vim.cmd("qa!")
end
vim.cmd("edit deploy/site.rhai")
local buf = vim.api.nvim_get_current_buf()
local client = vim.lsp.start_client({ name = "weft", cmd = { weft, "lsp" }, root_dir = vim.fn.getcwd() })
vim.lsp.buf_attach_client(buf, client)
local ok = vim.wait(20000, function() return #vim.diagnostic.get(buf) > 0 end, 50)
if not ok then finish("no diagnostics\n") return end
local lines = {}
for _, d in ipairs(vim.diagnostic.get(buf)) do
  table.insert(lines, string.format("diagnostic %d %s", d.lnum, d.message))
end
vim.api.nvim_buf_set_lines(buf, 1, 2, false, { "    host." })
local params = { textDocument = { uri = vim.uri_from_bufnr(buf) }, position = { line = 1, character = 9 } }
local replies = vim.lsp.buf_request_sync(buf, "textDocument/completion", params, 20000) or {}
for _, reply in pairs(replies) do
  local items = reply.result and (reply.result.items or reply.result) or {}
  for _, item in ipairs(items) do table.insert(lines, "completion " .. item.label) end
end
finish(table.concat(lines, "\n") .. "\n")
