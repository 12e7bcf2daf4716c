// Checks what can be checked outside VS Code: the manifest names files that exist and
// commands extension.js registers, and the Rhai grammar tokenizes weft's own stdlib scripts
// with the scopes a theme colours. Run by `npm test` (scripts/build-vscode.sh runs it).
const assert = require("node:assert");
const fs = require("node:fs");
const path = require("node:path");
const test = require("node:test");
const oniguruma = require("vscode-oniguruma");
const textmate = require("vscode-textmate");

const here = path.join(__dirname, "..");
const manifest = JSON.parse(fs.readFileSync(path.join(here, "package.json"), "utf8"));
const stdlib = path.join(here, "..", "..", "stdlib");

test("the manifest names files that exist", () => {
  const named = [
    manifest.main,
    ...manifest.contributes.languages.map((l) => l.configuration),
    ...manifest.contributes.grammars.map((g) => g.path),
  ];
  for (const file of named) {
    assert.ok(fs.existsSync(path.join(here, file)), `${file} is missing`);
  }
  const config = JSON.parse(fs.readFileSync(path.join(here, "language-configuration.json"), "utf8"));
  assert.deepStrictEqual(config.comments, { lineComment: "//", blockComment: ["/*", "*/"] });
});

test("every contributed command is registered by extension.js", () => {
  const source = fs.readFileSync(path.join(here, "extension.js"), "utf8");
  const registered = [...source.matchAll(/registerCommand\("([^"]+)"/g)].map((m) => m[1]);
  const contributed = manifest.contributes.commands.map((c) => c.command);
  assert.deepStrictEqual(registered.sort(), contributed.sort());
  assert.deepStrictEqual(
    manifest.contributes.commands.map((c) => c.title).sort(),
    ["weft: list goals", "weft: run goal"]
  );
});

async function grammar() {
  const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm"));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async (scope) => {
      const entry = manifest.contributes.grammars.find((g) => g.scopeName === scope);
      if (!entry) return null;
      const file = path.join(here, entry.path);
      return textmate.parseRawGrammar(fs.readFileSync(file, "utf8"), file);
    },
  });
  return registry.loadGrammar("source.rhai");
}

// [text, scopes] of every token of `source`.
function tokenize(rhai, source) {
  let state = textmate.INITIAL;
  const out = [];
  for (const line of source.split("\n")) {
    const result = rhai.tokenizeLine(line, state);
    for (const token of result.tokens) {
      out.push([line.slice(token.startIndex, token.endIndex), token.scopes]);
    }
    state = result.ruleStack;
  }
  return out;
}

function scopeOf(tokens, text) {
  const found = tokens.find(([t]) => t === text);
  assert.ok(found, `no token ${JSON.stringify(text)}`);
  return found[1].join(" ");
}

test("the grammar gives Rhai its scopes", async () => {
  const rhai = await grammar();
  const tokens = tokenize(
    rhai,
    [
      "/// Set up the web server.",
      "fn web_setup(host, version) {",
      '    host.file("/etc/a", #{ mode: "0644" }); // why',
      "    let root = `${host.vars.www_root}/v`;",
      "    if version == 2 { return; }",
      "    /* block",
      "       comment */ let n = 0x1F;",
      "}",
      "private fn helper() { true }",
    ].join("\n")
  );
  assert.match(scopeOf(tokens, "/// Set up the web server."), /comment\.line\.documentation/);
  assert.match(scopeOf(tokens, "fn"), /keyword\.declaration\.function/);
  assert.match(scopeOf(tokens, "web_setup"), /entity\.name\.function\.rhai/);
  assert.match(scopeOf(tokens, "file"), /entity\.name\.function\.call/);
  assert.match(scopeOf(tokens, "/etc/a"), /string\.quoted\.double/);
  assert.match(scopeOf(tokens, "#{"), /punctuation\.definition\.map/);
  assert.match(scopeOf(tokens, "// why"), /comment\.line\.double-slash/);
  assert.match(scopeOf(tokens, "${"), /string\.interpolated.*punctuation\.section\.interpolation\.begin/);
  const inside = tokens.find(([t]) => t.includes("www_root"));
  assert.ok(inside, "no token with www_root");
  assert.match(inside[1].join(" "), /string\.interpolated.*meta\.interpolation/);
  assert.match(scopeOf(tokens, "if"), /keyword\.control/);
  assert.match(scopeOf(tokens, "       comment "), /comment\.block/);
  // The comment ends at `*/`: what follows is code again.
  const close = tokens.findIndex(([t]) => t === "*/");
  assert.doesNotMatch(tokens[close + 2][1].join(" "), /comment/, JSON.stringify(tokens[close + 2]));
  assert.strictEqual(tokens[close + 2][0], "let");
  assert.match(scopeOf(tokens, "0x1F"), /constant\.numeric\.hex/);
  assert.match(scopeOf(tokens, "private"), /storage\.modifier/);
  assert.match(scopeOf(tokens, "true"), /constant\.language/);
});

test("every stdlib script tokenizes and ends outside strings and comments", async () => {
  const rhai = await grammar();
  const files = fs
    .readdirSync(stdlib, { recursive: true })
    .filter((f) => f.endsWith(".rhai"))
    .map((f) => path.join(stdlib, f));
  assert.ok(files.length > 5, `only ${files.length} stdlib scripts`);
  for (const file of files) {
    const text = fs.readFileSync(file, "utf8");
    let state = textmate.INITIAL;
    for (const line of text.split("\n")) {
      state = rhai.tokenizeLine(line, state).ruleStack;
    }
    // A string or comment left open would colour the rest of the file wrongly.
    const end = rhai.tokenizeLine("x", state).tokens[0].scopes;
    assert.deepStrictEqual(end, ["source.rhai"], file);
  }
});
