// coedit browser client: an ES module without dependencies.
//
//   import { CoeditClient } from "@coedit/client";
//   const client = new CoeditClient({ api, sessionId, url, token, getToken,
//     onChange, onRemoteChange, onSessionChange, onError, onStatus });
//   await client.start();                  // loads the template, then connects
//   client.template; client.version;       // the server's template, kept in version order
//   await client.edit(patch, { label: "Text changed", type: "text" });
//
// Behaves as the seed's co-editing client does when the network misbehaves
// (docs/PROTOCOL.md, README "The browser client"): a ping every 10 s, and a lost
// connection (an unclean close, or 5 pings unanswered) is reconnected with
// jittered backoff for 60 s before error 5400; the recoverable errors 5001, 5100
// and 5300 are retried first and reported only if that fails; a refused reconnect
// is explained by asking the REST API (5150 gone, 4029 full, an expired token
// renewed through `getToken`). Changes are applied in version order, the user's
// own ones as the server applied them; unacknowledged changes are resent under
// their `changeId` after a reconnect (the server applies each once).

export const HEARTBEAT_MS = 10_000;
export const MISSED_PINGS = 5;
export const RECONNECT_WINDOW_MS = 60_000;
const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 5_000;
/** A change refused as over the connection's rate limit (4029) is sent again after this. */
export const RATE_LIMITED_RETRY_MS = 1_000;

/** Errors the client retries by reconnecting before it reports them. */
const RECOVERABLE = new Set([5001, 5100, 5300]);
/** Errors after which the session cannot go on: the client stops. */
const FINAL = new Set([5150, 5200, 5400, 5500, 5600, 4010, 4029, 4030]);

const SEED_MESSAGES = {
  5150: "Session does not exist.",
  5400: "Connection to the synchronization server was lost.",
  4010: "Missing or invalid credential.",
  4029: "Co-editor limit reached.",
};

const realClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (id) => clearTimeout(id),
};

export class CoeditClient {
  /** @param {import("./coedit.d.ts").CoeditOptions} o */
  constructor(o) {
    this.api = (o.api ?? "").replace(/\/$/, "");
    this.sessionId = o.sessionId;
    this.url = o.url;
    this.token = o.token;
    this.getToken = o.getToken;
    this.on = {
      change: o.onChange ?? (() => {}),
      remoteChange: o.onRemoteChange ?? (() => {}),
      sessionChange: o.onSessionChange ?? (() => {}),
      error: o.onError ?? (() => {}),
      status: o.onStatus ?? (() => {}),
      resync: o.onResync ?? (() => {}),
    };
    this.WebSocket = o.WebSocket ?? globalThis.WebSocket;
    this.fetch = o.fetch ?? ((...a) => globalThis.fetch(...a));
    this.clock = o.clock ?? realClock;
    this.doc = null;
    this.confirmed = 0; // the version `doc` is at
    this.pending = new Map(); // changeId -> {message, resolve, reject, resent}
    this.slots = new Map(); // version -> {diff, entry?, own?: {changeId, label, type}}
    this.locks = new Map(); // target -> [resolve]
    this.state = "idle";
    this.ws = null;
    this.lostAt = null; // when the connection was lost, while reconnecting
    this.attempt = 0;
    this.unanswered = 0;
    this.heldError = null; // a recoverable error, reported if the reconnect fails
    this.timers = new Set();
  }

  /** The template as the server has it at `version`. */
  get template() {
    return this.doc;
  }

  get version() {
    return this.confirmed;
  }

  /**
   * Loads the template (GET with the join token), then connects. Resolves once
   * connected; rejects with the error that stops it (also given to `onError`).
   */
  async start() {
    try {
      await this.load();
    } catch (err) {
      const e = err?.code ? err : this.error(5100, `loading the template failed: ${err?.message ?? err}`);
      this.fail(e);
      throw Object.assign(new Error(e.message), e);
    }
    await new Promise((resolve, reject) => {
      this.starting = { resolve, reject };
      this.connect();
    });
  }

  /** Stops for good: no reconnect, no callbacks. */
  close() {
    this.setState("closed");
    this.stopTimers();
    this.ws?.close(1000);
  }

  /**
   * Sends a change made on the current template. Resolves `{version}` once the
   * server stored it (and `template` includes it); rejects with the server's
   * error (4009: the change conflicts, redo it on the new template).
   */
  edit(patch, { label = "", type = "" } = {}) {
    const changeId = crypto.randomUUID();
    const message = { action: "edit", changeId, baseVersion: this.confirmed, patch, label, type };
    return new Promise((resolve, reject) => {
      this.pending.set(changeId, { message, resolve, reject, resent: false });
      this.send(message);
    });
  }

  /** Asks for a row or module; resolves `{granted, heldBy}`. */
  lock(target) {
    return new Promise((resolve) => {
      const waiting = this.locks.get(target) ?? [];
      waiting.push(resolve);
      this.locks.set(target, waiting);
      this.send({ action: "lock", target });
    });
  }

  unlock(target) {
    this.send({ action: "unlock", target });
  }

  // ---- the connection ----

  async load() {
    const res = await this.rest(`/v1/coedit/session/${this.sessionId}`);
    if (res.status !== 200) throw this.refusal(res.status, res.body);
    this.doc = res.body.template;
    this.confirmed = res.body.version;
    this.slots.clear();
    return res.body;
  }

  /** Opens the socket; a refusal or a drop goes on to `retry` or `lost`. */
  connect() {
    this.setState(this.lostAt === null ? "connecting" : "reconnecting");
    const ws = new this.WebSocket(`${this.url}?token=${encodeURIComponent(this.token)}`);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (this.ws !== ws) return;
      opened = true;
      this.lostAt = null;
      this.attempt = 0;
      this.unanswered = 0;
      this.heldError = null;
      this.setState("open");
      this.beat();
      // Who is here, what was missed, then what was never acknowledged.
      this.send({ action: "presence" });
      this.send({ action: "sync", sinceVersion: this.confirmed });
      for (const p of this.pending.values()) {
        p.resent = true;
        this.send(p.message);
      }
      this.starting?.resolve();
      this.starting = null;
    };
    ws.onmessage = (e) => {
      if (this.ws === ws) this.receive(JSON.parse(e.data));
    };
    ws.onclose = (e) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.stopTimers();
      if (this.state === "closed" || this.state === "failed") return;
      if (this.lostAt === null) this.lostAt = this.clock.now();
      if (!opened) return this.retry();
      this.lost(e?.wasClean && e.code === 1000 ? "the server closed the connection" : "the connection dropped");
    };
  }

  /** The connection is gone: reconnect, within the window. */
  lost(why) {
    this.ws?.close(4000);
    this.ws = null;
    this.stopTimers();
    if (this.lostAt === null) this.lostAt = this.clock.now();
    this.detail = why;
    this.setState("reconnecting");
    this.schedule();
  }

  schedule() {
    const elapsed = this.clock.now() - this.lostAt;
    if (elapsed >= RECONNECT_WINDOW_MS) return this.giveUp();
    const cap = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** this.attempt++);
    const delay = Math.min(cap * (0.5 + Math.random() / 2), RECONNECT_WINDOW_MS - elapsed);
    this.later(delay, () => this.connect());
  }

  /** A reconnect was refused: ask the REST API why, then stop or go on. */
  async retry() {
    const err = await this.explain();
    if (this.state === "closed" || this.state === "failed") return;
    if (err) return this.fail(err);
    this.schedule();
  }

  /**
   * Why the server refuses this session (GET with the token): an error to stop
   * with, or null to keep trying (a transient fault, a network error, or an
   * expired token the page renewed through `getToken`).
   */
  async explain() {
    let res;
    try {
      res = await this.rest(`/v1/coedit/session/${this.sessionId}`);
    } catch {
      return null; // the network: keep trying
    }
    if (res.status === 401 && this.getToken) {
      try {
        this.token = await this.getToken();
        return null; // try again with the new token
      } catch {
        // the page could not renew it
      }
    }
    if (res.status === 200) {
      const seats = res.body.seats;
      if (seats && seats.used >= seats.limit) {
        return this.error(4029, `the session has all ${seats.limit} co-editor seats taken`);
      }
      return null;
    }
    if (res.status >= 500 || res.status === 0) return null;
    return this.refusal(res.status, res.body);
  }

  refusal(status, body) {
    if (status === 404) return this.error(5150, body?.detail ?? "the session has ended");
    if (status === 401) {
      return this.error(4010, body?.detail ?? "the join token expired; the host application must issue a new one");
    }
    return this.error(body?.code ?? 5001, body?.detail ?? `the server answered ${status}`, body?.message);
  }

  giveUp() {
    const held = this.heldError;
    this.fail(held ?? this.error(5400, `no connection for ${RECONNECT_WINDOW_MS / 1000} s: ${this.detail ?? "network error"}`));
  }

  fail(err) {
    if (this.state === "failed" || this.state === "closed") return;
    this.setState("failed");
    this.stopTimers();
    this.ws?.close(1000);
    this.ws = null;
    const rejection = () => Object.assign(new Error(err.message), err);
    for (const p of this.pending.values()) p.reject(rejection());
    this.pending.clear();
    this.starting?.reject(rejection());
    this.starting = null;
    this.on.error(err);
  }

  error(code, detail, message) {
    return { code, message: message ?? SEED_MESSAGES[code] ?? "Unexpected error occurred during co-editing.", detail, recoverable: RECOVERABLE.has(code) };
  }

  /** Pings every 10 s; 5 unanswered in a row mean the connection is gone. */
  beat() {
    this.later(HEARTBEAT_MS, () => {
      if (this.state !== "open" && this.state !== "waiting") return;
      if (this.unanswered >= MISSED_PINGS) return this.lost(`${MISSED_PINGS} pings unanswered`);
      // A ping went unanswered: changes may not be getting through.
      if (this.unanswered >= 1) this.setState("waiting");
      this.unanswered += 1;
      this.send({ action: "ping" });
      this.beat();
    });
  }

  send(message) {
    if (this.ws?.readyState === 1) this.ws.send(JSON.stringify(message));
  }

  async rest(path) {
    const res = await this.fetch(`${this.api}${path}`, { headers: { authorization: `Bearer ${this.token}` } });
    let body = null;
    try {
      body = await res.json();
    } catch {
      // not JSON
    }
    return { status: res.status, body };
  }

  setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.on.status(state);
  }

  later(ms, fn) {
    const id = this.clock.setTimeout(() => {
      this.timers.delete(id);
      fn();
    }, ms);
    this.timers.add(id);
  }

  stopTimers() {
    for (const id of this.timers) this.clock.clearTimeout(id);
    this.timers.clear();
  }

  // ---- messages ----

  receive(m) {
    switch (m.type) {
      case "pong":
        this.unanswered = 0;
        if (this.state === "waiting") this.setState("open");
        if (m.version > this.confirmed && !this.slots.has(this.confirmed + 1)) {
          this.send({ action: "sync", sinceVersion: this.confirmed });
        }
        break;
      case "change":
        this.fill(m.historyEntry);
        break;
      case "changes":
        for (const e of m.entries) this.fill(e);
        break;
      case "ack":
        this.acknowledged(m);
        break;
      case "resync":
        this.reload();
        break;
      case "lock": {
        const waiting = this.locks.get(m.target) ?? [];
        waiting.shift()?.({ granted: m.granted, heldBy: m.heldBy });
        break;
      }
      case "sessionChange":
        this.on.sessionChange({ change: m.change, sessionData: m.sessionData });
        break;
      case "error":
        this.serverError(m);
        break;
    }
  }

  serverError(m) {
    const p = m.changeId && this.pending.get(m.changeId);
    if (p && m.code === 4029) {
      // Rate limited: the same change again once the budget refilled.
      this.later(RATE_LIMITED_RETRY_MS, () => {
        if (this.pending.get(m.changeId) === p) this.send(p.message);
      });
      return;
    }
    if (p) {
      this.pending.delete(m.changeId);
      p.reject(Object.assign(new Error(m.message), m));
      return;
    }
    const err = { code: m.code, message: m.message, detail: m.detail, recoverable: RECOVERABLE.has(m.code) };
    if (RECOVERABLE.has(m.code)) {
      // Retried first; reported only if the reconnect fails.
      this.heldError = err;
      return this.lost(m.detail);
    }
    // A 4xxx answers one message (a lock over the limits, a viewer's lock, a
    // message over the rate limit): the session goes on.
    if (FINAL.has(m.code) && m.code >= 5000) return this.fail(err);
    this.on.error(err);
  }

  acknowledged(m) {
    const p = this.pending.get(m.changeId);
    this.pending.delete(m.changeId);
    if (m.version > this.confirmed && !this.slots.has(m.version)) {
      if (m.diff || (p && !p.resent)) {
        const { label, type, patch } = p?.message ?? {};
        this.slots.set(m.version, { diff: m.diff ?? patch, own: { changeId: m.changeId, label, type } });
      } else {
        // A resend answered with its first version: how it was applied then is in
        // the log.
        this.send({ action: "sync", sinceVersion: this.confirmed });
      }
    }
    this.advance();
    p?.resolve({ version: m.version });
  }

  fill(entry) {
    if (entry.version <= this.confirmed || this.slots.has(entry.version)) return;
    const p = this.pending.get(entry.changeId);
    const own = p ? { changeId: entry.changeId, label: entry.label, type: entry.type } : null;
    this.slots.set(entry.version, { diff: entry.diff, entry, own });
    this.advance();
    if (this.slots.size > 0 && !this.slots.has(this.confirmed + 1)) {
      this.send({ action: "sync", sinceVersion: this.confirmed });
    }
  }

  advance() {
    while (this.slots.has(this.confirmed + 1)) {
      const slot = this.slots.get(this.confirmed + 1);
      this.slots.delete(this.confirmed + 1);
      applyPatch(this.doc, slot.diff);
      this.confirmed += 1;
      if (slot.own) {
        this.on.change(this.doc, { ...slot.own, patches: slot.diff }, this.confirmed);
      } else {
        this.on.remoteChange(slot.entry, this.doc, this.confirmed);
      }
    }
  }

  async reload() {
    try {
      await this.load();
      this.on.resync(this.doc, this.confirmed);
    } catch (err) {
      if (err?.code) this.fail(err);
    }
  }
}

/** Applies RFC 6902 ops (as the server sends them: indices resolved) in place. */
export function applyPatch(doc, ops) {
  const split = (path) => path.split("/").slice(1).map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
  const parentOf = (path) => {
    const tokens = split(path);
    const last = tokens.pop();
    let node = doc;
    for (const t of tokens) node = node[Array.isArray(node) ? Number(t) : t];
    return [node, last];
  };
  const get = (path) => split(path).reduce((n, t) => n[Array.isArray(n) ? Number(t) : t], doc);
  const add = (path, value) => {
    const [parent, last] = parentOf(path);
    if (Array.isArray(parent)) parent.splice(last === "-" ? parent.length : Number(last), 0, value);
    else parent[last] = value;
  };
  const remove = (path) => {
    const [parent, last] = parentOf(path);
    if (Array.isArray(parent)) return parent.splice(Number(last), 1)[0];
    const value = parent[last];
    delete parent[last];
    return value;
  };
  for (const op of ops) {
    if (op.op === "add") add(op.path, structuredClone(op.value));
    else if (op.op === "remove") remove(op.path);
    else if (op.op === "replace") {
      remove(op.path);
      add(op.path, structuredClone(op.value));
    } else if (op.op === "move") add(op.path, remove(op.from));
    else if (op.op === "copy") add(op.path, structuredClone(get(op.from)));
  }
  return doc;
}
