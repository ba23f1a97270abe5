// The client against a scripted server: a WebSocket, REST answers and a clock the
// test drives, so the 60 s reconnect window takes milliseconds. Each path of the
// seed's reconnect and error contract, and the template kept in version order.

import { test } from "node:test";
import assert from "node:assert/strict";
import { CoeditClient, applyPatch, HEARTBEAT_MS, RATE_LIMITED_RETRY_MS, RECONNECT_WINDOW_MS } from "../coedit.js";

/** Timers that run only when the test advances time. */
class FakeClock {
  constructor() { this.t = 0; this.timers = new Map(); this.next = 1; }
  now() { return this.t; }
  setTimeout(fn, ms) { const id = this.next++; this.timers.set(id, { at: this.t + ms, fn }); return id; }
  clearTimeout(id) { this.timers.delete(id); }
  async advance(ms) {
    const end = this.t + ms;
    for (;;) {
      await flush();
      const due = [...this.timers].filter(([, x]) => x.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
    await flush();
  }
}

const flush = async () => { for (let i = 0; i < 20; i++) await Promise.resolve(); await new Promise((r) => setImmediate(r)); };

/** The server side of every socket the client opens. */
class Server {
  constructor() {
    this.sockets = [];
    const server = this;
    this.Socket = class {
      constructor(url) { this.url = url; this.sent = []; this.readyState = 0; server.sockets.push(this); }
      send(text) { this.sent.push(JSON.parse(text)); }
      close() { this.readyState = 3; }
      // The test's side:
      accept() { this.readyState = 1; this.onopen?.(); }
      refuse() { this.readyState = 3; this.onclose?.({ wasClean: false, code: 1006 }); }
      drop() { this.readyState = 3; this.onclose?.({ wasClean: false, code: 1006 }); }
      deliver(message) { this.onmessage?.({ data: JSON.stringify(message) }); }
      actions() { return this.sent.map((m) => m.action); }
    };
    this.rest = { status: 200, body: { template: { page: { rows: [] } }, version: 1, users: {}, seats: { used: 1, limit: 5 } } };
    this.restCalls = [];
    this.fetch = async (url, init) => {
      this.restCalls.push({ url, auth: init.headers.authorization });
      const { status, body } = typeof this.rest === "function" ? this.rest() : this.rest;
      return { status, json: async () => body };
    };
  }
  get last() { return this.sockets.at(-1); }
}

function client(server, clock, extra = {}) {
  const seen = { changes: [], remote: [], sessions: [], errors: [], status: [] };
  const c = new CoeditClient({
    api: "http://api", sessionId: "s1", url: "ws://x", token: "t1",
    WebSocket: server.Socket, fetch: server.fetch, clock,
    onChange: (json, response, version) => seen.changes.push({ json: structuredClone(json), response, version }),
    onRemoteChange: (entry, json, version) => seen.remote.push({ entry, json: structuredClone(json), version }),
    onSessionChange: (data) => seen.sessions.push(data),
    onError: (e) => seen.errors.push(e),
    onStatus: (s) => seen.status.push(s),
    ...extra,
  });
  return { c, seen };
}

async function started(extra) {
  const server = new Server();
  const clock = new FakeClock();
  const { c, seen } = client(server, clock, extra);
  const start = c.start();
  await flush();
  server.last.accept();
  await start;
  return { server, clock, c, seen };
}

const entry = (version, changeId, diff, userId = "bob") => ({ version, changeId, userId, label: "l", type: "t", timestamp: "", diff });
const row = (uuid) => ({ op: "add", path: "/page/rows/-", value: { uuid } });

test("it loads the template, learns who is here and applies changes in version order", async () => {
  const { server, c, seen } = await started();
  assert.equal(server.restCalls[0].url, "http://api/v1/coedit/session/s1");
  assert.equal(server.restCalls[0].auth, "Bearer t1");
  const ws = server.last;
  assert.equal(ws.url, "ws://x?token=t1");
  assert.deepEqual(ws.sent.slice(0, 2), [{ action: "presence" }, { action: "sync", sinceVersion: 1 }]);
  const users = { c1: { userId: "ann", username: "Ann", userColor: "#c33" } };
  ws.deliver({ type: "sessionChange", change: { type: "USER_JOINED", value: users.c1 }, sessionData: { users } });
  assert.deepEqual(seen.sessions, [{ change: { type: "USER_JOINED", value: users.c1 }, sessionData: { users } }]);

  // Version 3 before 2: held, a sync asked for, then both in order.
  ws.deliver({ type: "change", historyEntry: entry(3, "c3", [{ op: "add", path: "/page/rows/1", value: { uuid: "r3" } }]) });
  assert.deepEqual(seen.remote, []);
  assert.deepEqual(ws.sent.at(-1), { action: "sync", sinceVersion: 1 });
  ws.deliver({ type: "changes", entries: [entry(2, "c2", [row("r2")]), entry(3, "c3", [])] });
  assert.deepEqual(seen.remote.map((r) => r.version), [2, 3]);
  assert.deepEqual(seen.remote[1].json.page.rows, [{ uuid: "r2" }, { uuid: "r3" }]);
  assert.equal(c.version, 3);
  assert.deepEqual(c.template.page.rows.map((r) => r.uuid), ["r2", "r3"]);
  c.close();
});

test("the user's own change is applied as the server applied it, then onChange", async () => {
  const { server, c, seen } = await started();
  const ws = server.last;
  const first = c.edit([{ op: "add", path: "/page/rows/0", value: { uuid: "mine" } }], { label: "Row added", type: "row" });
  const sent = ws.sent.at(-1);
  assert.equal(sent.action, "edit");
  assert.equal(sent.baseVersion, 1);
  // Bob's row landed first (version 2); ours was rebased to index 1.
  ws.deliver({ type: "change", historyEntry: entry(2, "b", [{ op: "add", path: "/page/rows/0", value: { uuid: "bob" } }]) });
  ws.deliver({ type: "ack", changeId: sent.changeId, version: 3, diff: [{ op: "add", path: "/page/rows/1", value: { uuid: "mine" } }] });
  assert.deepEqual(await first, { version: 3 });
  assert.deepEqual(c.template.page.rows.map((r) => r.uuid), ["bob", "mine"]);
  assert.equal(seen.changes.length, 1);
  assert.equal(seen.changes[0].version, 3);
  assert.equal(seen.changes[0].response.label, "Row added");
  assert.deepEqual(seen.changes[0].json.page.rows.map((r) => r.uuid), ["bob", "mine"]);
  // An ack without diff: applied as sent.
  const second = c.edit([{ op: "remove", path: "/page/rows/0" }]);
  ws.deliver({ type: "ack", changeId: ws.sent.at(-1).changeId, version: 4 });
  await second;
  assert.deepEqual(c.template.page.rows.map((r) => r.uuid), ["mine"]);
  c.close();
});

test("an unclean close reconnects with backoff and resumes with nothing lost", async () => {
  const { server, clock, c, seen } = await started();
  const pending = c.edit([row("r2")]);
  const changeId = server.last.sent.at(-1).changeId;
  server.last.drop(); // before the ack
  assert.equal(c.state, "reconnecting");
  await clock.advance(200);
  server.last?.refuse?.call(server.last);
  const before = server.sockets.length;
  await clock.advance(5_000);
  assert.ok(server.sockets.length > before, "it tried again");
  server.last.accept();
  assert.equal(c.state, "open");
  // Resent under its changeId; the server answers with its first version.
  const resent = server.last.sent.find((m) => m.action === "edit");
  assert.equal(resent.changeId, changeId);
  server.last.deliver({ type: "ack", changeId, version: 2, diff: [{ op: "add", path: "/page/rows/0", value: { uuid: "r2" } }] });
  assert.deepEqual(await pending, { version: 2 });
  assert.deepEqual(c.template.page.rows, [{ uuid: "r2" }]);
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.status.filter((s, i, a) => s !== a[i - 1]), ["connecting", "open", "reconnecting", "open"]);
  c.close();
});

test("five unanswered pings mean the connection is gone", async () => {
  const { server, clock, c, seen } = await started();
  const ws = server.last;
  await clock.advance(HEARTBEAT_MS);
  ws.deliver({ type: "pong", version: 1 });
  await clock.advance(HEARTBEAT_MS * 2);
  assert.equal(c.state, "waiting", "a ping went unanswered: the overlay shows");
  ws.deliver({ type: "pong", version: 1 });
  assert.equal(c.state, "open");
  const sockets = server.sockets.length;
  await clock.advance(HEARTBEAT_MS * 6 + 1_000);
  assert.equal(ws.sent.filter((m) => m.action === "ping").length, 3 + 5, "three answered, then five not");
  assert.ok(server.sockets.length > sockets, "it reconnected");
  assert.ok(seen.status.includes("reconnecting"));
  c.close();
});

test("60 s without a connection is error 5400, and the client stops", async () => {
  const { server, clock, c, seen } = await started();
  server.last.drop();
  for (let t = 0; t < RECONNECT_WINDOW_MS + 10_000; t += 1_000) {
    await clock.advance(1_000);
    if (server.last.readyState === 0) server.last.refuse();
  }
  assert.equal(seen.errors.length, 1);
  assert.equal(seen.errors[0].code, 5400);
  assert.equal(seen.errors[0].message, "Connection to the synchronization server was lost.");
  assert.equal(seen.errors[0].recoverable, false);
  assert.equal(c.state, "failed");
  const sockets = server.sockets.length;
  await clock.advance(120_000);
  assert.equal(server.sockets.length, sockets, "no attempt after giving up");
});

test("a recoverable error is retried first and reported only when the retry fails", async () => {
  const { server, clock, c, seen } = await started();
  server.last.deliver({ type: "error", code: 5300, message: "Connection to the synchronization server was lost.", detail: "no ping for 50 seconds", recoverable: true });
  assert.equal(c.state, "reconnecting");
  await clock.advance(6_000);
  server.last.accept();
  assert.deepEqual(seen.errors, [], "the reconnect worked: nothing to report");
  // Again, and this time the server stays away.
  server.last.deliver({ type: "error", code: 5001, message: "Unexpected error occurred during co-editing.", detail: "boom", recoverable: true });
  for (let t = 0; t < RECONNECT_WINDOW_MS + 5_000; t += 1_000) {
    await clock.advance(1_000);
    if (server.last.readyState === 0) server.last.refuse();
  }
  assert.deepEqual(seen.errors.map((e) => e.code), [5001]);
  assert.equal(c.state, "failed");
});

test("a non-recoverable error is reported at once", async () => {
  const { server, c, seen } = await started();
  server.last.deliver({ type: "error", code: 5500, message: "Co-editing is not supported for your current plan.", detail: "", recoverable: false });
  assert.deepEqual(seen.errors.map((e) => e.code), [5500]);
  assert.equal(c.state, "failed");
});

test("a change over the rate limit is sent again later; a refused lock does not end the session", async () => {
  const { server, clock, c, seen } = await started();
  const ws = server.last;
  const done = c.edit([{ op: "add", path: "/page/rows/0", value: { uuid: "r" } }]);
  const sent = ws.sent.at(-1);
  ws.deliver({ type: "error", code: 4029, message: "Co-editor limit reached.", detail: "rate limited: ...", recoverable: false, changeId: sent.changeId });
  await clock.advance(RATE_LIMITED_RETRY_MS - 1);
  assert.equal(ws.sent.filter((m) => m.changeId === sent.changeId).length, 1);
  await clock.advance(1);
  assert.deepEqual(ws.sent.at(-1), sent, "the same change, same changeId");
  ws.deliver({ type: "ack", changeId: sent.changeId, version: 2 });
  assert.deepEqual(await done, { version: 2 });
  // 4029 and 4030 answering one message (a lock over the limits, a viewer's lock).
  ws.deliver({ type: "error", code: 4029, message: "Co-editor limit reached.", detail: "at most 5 locks", recoverable: false });
  ws.deliver({ type: "error", code: 4030, message: "Token not valid for this session.", detail: "viewers cannot lock", recoverable: false });
  assert.deepEqual(seen.errors.map((e) => e.code), [4029, 4030]);
  assert.equal(c.state, "open");
  c.close();
});

test("a refused reconnect is explained: the session is gone (5150)", async () => {
  const { server, clock, c, seen } = await started();
  server.last.drop();
  server.rest = { status: 404, body: { code: 5150, message: "Session does not exist.", detail: "no such session" } };
  await clock.advance(6_000);
  server.last.refuse();
  await clock.advance(1_000);
  assert.deepEqual(seen.errors.map((e) => e.code), [5150]);
  assert.equal(c.state, "failed");
});

test("a refused reconnect is explained: the session is full (4029)", async () => {
  const { server, clock, seen } = await started();
  server.last.drop();
  server.rest = { status: 200, body: { template: {}, version: 1, users: {}, seats: { used: 5, limit: 5 } } };
  await clock.advance(6_000);
  server.last.refuse();
  await clock.advance(1_000);
  assert.deepEqual(seen.errors.map((e) => e.code), [4029]);
});

test("an expired token is renewed through getToken and the reconnect goes on", async () => {
  let renewals = 0;
  const { server, clock, c, seen } = await started({ getToken: async () => `t${2 + renewals++}` });
  server.last.drop();
  server.rest = () => (server.restCalls.at(-1).auth === "Bearer t1"
    ? { status: 401, body: { code: 4010, message: "Missing or invalid credential.", detail: "the join token expired" } }
    : { status: 200, body: { seats: { used: 1, limit: 5 } } });
  await clock.advance(6_000);
  server.last.refuse();
  await clock.advance(6_000);
  assert.equal(renewals, 1);
  assert.equal(server.last.url, "ws://x?token=t2");
  server.last.accept();
  assert.equal(c.state, "open");
  assert.deepEqual(seen.errors, []);
  c.close();
});

test("without getToken an expired token ends it with 4010", async () => {
  const { server, clock, seen } = await started();
  server.last.drop();
  server.rest = { status: 401, body: { code: 4010, message: "Missing or invalid credential.", detail: "the join token expired" } };
  await clock.advance(6_000);
  server.last.refuse();
  await clock.advance(1_000);
  assert.deepEqual(seen.errors.map((e) => e.code), [4010]);
});

test("applyPatch applies the ops the server sends", () => {
  const doc = { page: { rows: [{ a: 1 }, { b: 2 }] } };
  applyPatch(doc, [
    { op: "add", path: "/page/rows/1", value: { x: 0 } },
    { op: "replace", path: "/page/rows/0/a", value: 9 },
    { op: "move", from: "/page/rows/2", path: "/page/rows/0" },
    { op: "copy", from: "/page/rows/1", path: "/page/c" },
    { op: "remove", path: "/page/rows/2" },
  ]);
  assert.deepEqual(doc, { page: { rows: [{ b: 2 }, { a: 9 }], c: { a: 9 } } });
});
