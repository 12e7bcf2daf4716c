// Starts `weft lsp` for Rhai scripts and weft.toml, and runs goals in a terminal.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function weftPath() {
  return vscode.workspace.getConfiguration("weft").get("path") || "weft";
}

// Goal names from `weft list --json`, run in the workspace folder.
function listGoals() {
  const { execFile } = require("child_process");
  const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  return new Promise((resolve, reject) =>
    execFile(weftPath(), ["list", "--json"], { cwd }, (err, stdout, stderr) =>
      err ? reject(new Error(stderr || err.message)) : resolve(JSON.parse(stdout))
    )
  );
}

function terminal() {
  const existing = vscode.window.terminals.find((t) => t.name === "weft");
  return existing || vscode.window.createTerminal({ name: "weft" });
}

// POSIX single quotes, so a goal argument reaches weft as typed.
function quote(arg) {
  return "'" + String(arg).replace(/'/g, "'\\''") + "'";
}

async function activate(context) {
  client = new LanguageClient(
    "weft",
    "weft",
    { command: weftPath(), args: ["lsp"] },
    {
      documentSelector: [
        { scheme: "file", language: "rhai" },
        { scheme: "file", pattern: "**/weft.toml" },
      ],
      // The env whose vars `host.vars.` completes; weft's default env when empty. Changes
      // reach the server as workspace/didChangeConfiguration with the `weft` section.
      initializationOptions: { env: vscode.workspace.getConfiguration("weft").get("env") || null },
      synchronize: { configurationSection: "weft" },
    }
  );
  context.subscriptions.push(
    vscode.commands.registerCommand("weft.listGoals", () => {
      const t = terminal();
      t.show();
      t.sendText(`${quote(weftPath())} list`);
    }),
    vscode.commands.registerCommand("weft.runGoal", async () => {
      let goals;
      try {
        goals = await listGoals();
      } catch (err) {
        vscode.window.showErrorMessage(`weft list: ${err.message}`);
        return;
      }
      const pick = await vscode.window.showQuickPick(
        goals.map((g) => ({ label: g.name, description: `[${g.layer}]`, detail: g.doc.split("\n")[0], goal: g }))
      );
      if (!pick) return;
      const args = [];
      for (const param of pick.goal.params) {
        const value = await vscode.window.showInputBox({ prompt: `${pick.goal.name}: ${param}` });
        if (value === undefined) return;
        args.push(value);
      }
      const env = await vscode.window.showInputBox({
        prompt: "env (-e), empty for the default",
        value: vscode.workspace.getConfiguration("weft").get("env") || "",
      });
      if (env === undefined) return;
      const words = [weftPath(), "run", pick.goal.name, ...args].concat(env ? ["-e", env] : []);
      const t = terminal();
      t.show();
      t.sendText(words.map(quote).join(" "));
    })
  );
  await client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
