// The client's own logic, against a scripted WebSocket: changes are delivered in
// version order whatever order they arrive in, gaps are asked for with `sync`,
// and a change whose ack was lost is resent under the same changeId after a
// reconnect and resolved once.

import { test } from "node:test";
import assert from "node:assert/strict";
import { CoeditClient, applyPatch } from "../coedit.js";

/** A WebSocket the test drives: records what is sent, delivers what it is told. */
class ScriptedSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    this.readyState = 0;
    ScriptedSocket.all.push(this);
    setTimeout(() => { this.readyState = 1; this.onopen?.(); }, 0);
  }
  send(text) { this.sent.push(JSON.parse(text)); }
  deliver(message) { this.onmessage?.({ data: JSON.stringify(message) }); }
  close() { this.readyState = 3; this.onclose?.(); }
}

const entry = (version, changeId, userId = "bob") => ({
  version, changeId, userId, label: "", type: "", timestamp: "", diff: [{ op: "add", path: `/page/v${version}`, value: version }],
});
const tick = (ms = 0) => new Promise((r) => setTimeout(r, ms));

test("remote changes are applied in version order and gaps are synced", async () => {
  ScriptedSocket.all = [];
  const seen = [];
  const client = new CoeditClient({ url: "ws://x", token: "t", version: 1, WebSocket: ScriptedSocket, onChange: (e) => seen.push(e.version) });
  await client.connect();
  const ws = ScriptedSocket.all[0];
  assert.deepEqual(ws.sent[0], { action: "sync", sinceVersion: 1 });
  ws.deliver({ type: "change", historyEntry: entry(3, "c3") });
  assert.deepEqual(seen, []);
  assert.deepEqual(ws.sent.at(-1), { action: "sync", sinceVersion: 1 });
  ws.deliver({ type: "changes", entries: [entry(2, "c2"), entry(3, "c3")] });
  assert.deepEqual(seen, [2, 3]);
  assert.equal(client.version, 3);
  // Repeats are ignored.
  ws.deliver({ type: "change", historyEntry: entry(3, "c3") });
  assert.deepEqual(seen, [2, 3]);
  client.close();
});

test("a change whose ack was lost is resent with its changeId and resolved once", async () => {
  ScriptedSocket.all = [];
  const seen = [];
  const client = new CoeditClient({ url: "ws://x", token: "t", version: 1, WebSocket: ScriptedSocket, onChange: (e) => seen.push(e.version) });
  await client.connect();
  const first = ScriptedSocket.all[0];
  const done = client.edit([{ op: "add", path: "/page/a", value: 1 }], { label: "A" });
  const sent = first.sent.at(-1);
  assert.equal(sent.action, "edit");
  assert.equal(sent.baseVersion, 1);
  first.close(); // lost before the ack
  while (ScriptedSocket.all.length < 2) await tick(50);
  const second = ScriptedSocket.all[1];
  await tick();
  const resent = second.sent.find((m) => m.action === "edit");
  assert.deepEqual(resent, sent);
  second.deliver({ type: "ack", changeId: sent.changeId, version: 2 });
  assert.deepEqual(await done, { version: 2 });
  // Its own change coming back through sync is not delivered as a remote one.
  second.deliver({ type: "changes", entries: [{ ...entry(2, sent.changeId, "me") }, entry(3, "b1")] });
  assert.deepEqual(seen, [3]);
  assert.equal(client.version, 3);
  client.close();
});

test("a refused change rejects with the server's code", async () => {
  ScriptedSocket.all = [];
  const errors = [];
  const client = new CoeditClient({ url: "ws://x", token: "t", version: 1, WebSocket: ScriptedSocket, onError: (e) => errors.push(e.code) });
  await client.connect();
  const ws = ScriptedSocket.all[0];
  const done = client.edit([{ op: "remove", path: "/page" }]);
  const { changeId } = ws.sent.at(-1);
  ws.deliver({ type: "error", code: 4001, message: "Invalid patch.", detail: "patch[0]", changeId, recoverable: false });
  await assert.rejects(done, (e) => e.code === 4001 && e.detail === "patch[0]");
  ws.deliver({ type: "error", code: 5300, message: "lost", detail: "", recoverable: true });
  assert.deepEqual(errors, [5300]);
  client.close();
});

test("applyPatch applies the ops the server sends", () => {
  const doc = { page: { rows: [{ n: 0 }, { n: 1 }], title: "a" } };
  applyPatch(doc, [
    { op: "add", path: "/page/rows/1", value: { n: 9 } },
    { op: "replace", path: "/page/title", value: "b" },
    { op: "move", from: "/page/rows/0", path: "/page/rows/2" },
    { op: "remove", path: "/page/rows/0" },
    { op: "copy", from: "/page/title", path: "/page/t~1x" },
  ]);
  assert.deepEqual(doc, { page: { rows: [{ n: 1 }, { n: 0 }], title: "b", "t/x": "b" } });
});
