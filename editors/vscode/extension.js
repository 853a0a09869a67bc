// The language client of the extension: starts `archc lsp` (archc/lsp.py) for .arch files and
// connects it to VS Code over stdio. The command is the setting `archc.server.command`
// (default ["archc", "lsp"]; e.g. ["/path/to/venv/bin/python", "-m", "archc", "lsp"]).
// Needs `npm install` in this folder once (vscode-languageclient); see docs/editors.md.
const vscode = require("vscode");
let LanguageClient;
try {
  ({ LanguageClient } = require("vscode-languageclient/node"));
} catch (e) {
  LanguageClient = undefined; // not installed: highlighting still works (it is declarative)
}

let client;

function activate(context) {
  if (LanguageClient === undefined) {
    vscode.window.showWarningMessage("archc: run `npm install` in the extension folder to use the language " +
                                     "server (archc lsp); highlighting works without it.");
    return undefined;
  }
  const command = vscode.workspace.getConfiguration("archc").get("server.command", ["archc", "lsp"]);
  const server = { command: command[0], args: command.slice(1) };
  client = new LanguageClient("archc", "archc language server", server,
                              { documentSelector: [{ scheme: "file", language: "arch" }] });
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
