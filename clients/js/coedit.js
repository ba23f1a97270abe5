// coedit browser client: a plain ES module, no dependencies.
//
//   import { CoeditClient, applyPatch } from "./coedit.js";
//   const client = new CoeditClient({ url, token, version, onChange, onSessionChange, onError, onResync });
//   await client.connect();
//   await client.edit([{ op: "replace", path: "/page/rows/0/...", value: "..." }], { label: "Text", type: "text" });
//
// It keeps the connection alive (ping every 10 s), reconnects with backoff, asks
// for what it missed when versions skip (`sync`), resends unacknowledged changes
// under the same `changeId` after a reconnect (the server applies each once), and
// delivers remote changes strictly in version order.

const HEARTBEAT_MS = 10_000;
const MAX_BACKOFF_MS = 30_000;

/** Codes after which retrying the same thing cannot help (docs/PROTOCOL.md). */
const FINAL = new Set([5150, 5500, 5600, 4030]);

export class CoeditClient {
  /**
   * @param {object} o
   * @param {string} o.url WebSocket URL from the join answer
   * @param {string} o.token join token
   * @param {number} o.version the version of the template the page holds (from GET)
   * @param {(entry: object) => void} [o.onChange] a remote change, in version order
   * @param {(change: object, sessionData: object) => void} [o.onSessionChange] USER_JOINED, USER_LEFT, LOCKED, UNLOCKED
   * @param {(error: {code: number, message: string, detail: string}) => void} [o.onError]
   * @param {(version: number) => void} [o.onResync] the log cannot be replayed: reload the template (GET), then call `reset`
   * @param {(state: string) => void} [o.onStatus] "open", "reconnecting", "closed"
   * @param {typeof WebSocket} [o.WebSocket] a WebSocket implementation (the browser's by default)
   */
  constructor(o) {
    this.url = o.url;
    this.token = o.token;
    this.version = o.version ?? 1;
    this.on = {
      change: o.onChange ?? (() => {}),
      sessionChange: o.onSessionChange ?? (() => {}),
      error: o.onError ?? (() => {}),
      resync: o.onResync ?? (() => {}),
      status: o.onStatus ?? (() => {}),
    };
    this.WebSocket = o.WebSocket ?? globalThis.WebSocket;
    this.pending = new Map(); // changeId -> {message, resolve, reject}
    this.locks = new Map(); // target -> [{resolve}]
    this.waiting = new Map(); // version -> entry, or "own" for our acknowledged changes
    this.ownChanges = new Set(); // changeIds of our acknowledged changes
    this.closed = false;
    this.attempt = 0;
  }

  /** Opens the connection; resolves once it is open. */
  connect() {
    return new Promise((resolve, reject) => {
      const ws = new this.WebSocket(`${this.url}?token=${encodeURIComponent(this.token)}`);
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this.attempt = 0;
        this.on.status("open");
        this.heartbeat = setInterval(() => this.send({ action: "ping" }), HEARTBEAT_MS);
        // Catch up, then resend what was never acknowledged.
        this.send({ action: "sync", sinceVersion: this.version });
        for (const p of this.pending.values()) this.send(p.message);
        resolve();
      };
      ws.onmessage = (e) => this.receive(JSON.parse(e.data));
      ws.onclose = () => {
        clearInterval(this.heartbeat);
        if (!opened) reject(new Error("the connection was refused"));
        if (this.closed) return this.on.status("closed");
        this.on.status("reconnecting");
        const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
        setTimeout(() => this.connect().catch(() => {}), delay);
      };
    });
  }

  close() {
    this.closed = true;
    clearInterval(this.heartbeat);
    this.ws?.close(1000);
  }

  send(message) {
    if (this.ws?.readyState === 1) this.ws.send(JSON.stringify(message));
  }

  /**
   * Sends a change made on the current version. Resolves with its version once
   * the server stored it; rejects with the server's error (4009: reload and redo).
   */
  edit(patch, { label = "", type = "" } = {}) {
    const changeId = crypto.randomUUID();
    const message = { action: "edit", changeId, baseVersion: this.version, patch, label, type };
    return new Promise((resolve, reject) => {
      this.pending.set(changeId, { message, resolve, reject });
      this.send(message);
    });
  }

  /** Asks for an element; resolves `{granted, heldBy}`. */
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

  /** After a resync: the page reloaded the template, at `version`. */
  reset(version) {
    this.version = version;
    this.waiting.clear();
  }

  receive(m) {
    switch (m.type) {
      case "change":
        this.queue(m.historyEntry);
        break;
      case "changes":
        for (const e of m.entries) this.queue(e);
        break;
      case "ack": {
        const p = this.pending.get(m.changeId);
        this.pending.delete(m.changeId);
        this.ownChanges.add(m.changeId);
        if (m.version > this.version) this.waiting.set(m.version, "own");
        this.advance();
        p?.resolve({ version: m.version });
        break;
      }
      case "pong":
        if (m.version > this.version && !this.waiting.has(this.version + 1)) {
          this.send({ action: "sync", sinceVersion: this.version });
        }
        break;
      case "resync":
        this.on.resync(m.version);
        break;
      case "lock": {
        const waiting = this.locks.get(m.target) ?? [];
        waiting.shift()?.({ granted: m.granted, heldBy: m.heldBy });
        break;
      }
      case "sessionChange":
        this.on.sessionChange(m.change, m.sessionData);
        break;
      case "error": {
        const p = m.changeId && this.pending.get(m.changeId);
        if (p) {
          this.pending.delete(m.changeId);
          p.reject(Object.assign(new Error(m.message), m));
        } else {
          this.on.error(m);
        }
        if (FINAL.has(m.code)) this.close();
        break;
      }
    }
  }

  queue(entry) {
    if (entry.version <= this.version) return;
    const own = this.ownChanges.has(entry.changeId) || this.pending.has(entry.changeId);
    this.waiting.set(entry.version, own ? "own" : entry);
    this.advance();
    // A gap: ask for what is missing.
    if (this.waiting.size > 0 && !this.waiting.has(this.version + 1)) {
      this.send({ action: "sync", sinceVersion: this.version });
    }
  }

  advance() {
    while (this.waiting.has(this.version + 1)) {
      const next = this.waiting.get(this.version + 1);
      this.waiting.delete(this.version + 1);
      this.version += 1;
      if (next !== "own") this.on.change(next);
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
