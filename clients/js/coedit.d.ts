// Types of the coedit browser client (coedit.js). The wire contract is
// docs/PROTOCOL.md in the coedit repository.

/** One RFC 6902 operation, paths from the template root (`/page/rows/0/...`). */
export interface PatchOp {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  from?: string;
  value?: unknown;
}

/** A Beefree-style template: `{page, comments}`. */
export interface Template {
  page: { rows?: unknown[]; [key: string]: unknown };
  comments?: Record<string, unknown>;
  [key: string]: unknown;
}

/** A user as others see them (seed shape; `role` only for viewers). */
export interface User {
  userId: string;
  username: string;
  userColor: string;
  role?: "viewer";
}

/** An accepted change (seed shape). */
export interface HistoryEntry {
  version: number;
  timestamp: string;
  changeId: string;
  label: string;
  type: string;
  userId: string;
  /** The ops as the server applied them. */
  diff: PatchOp[];
}

/** `onSessionChange`'s argument (seed shape). */
export interface SessionChange {
  change: {
    type: "USER_JOINED" | "USER_LEFT" | "LOCKED" | "UNLOCKED";
    value: User;
    /** The element, for LOCKED and UNLOCKED. */
    target?: string;
  };
  /** Users present, by connection id. */
  sessionData: { users: Record<string, User> };
}

/** What `onError` receives: a seed code (5xxx) or coedit's own (4xxx). */
export interface CoeditError {
  code: number;
  message: string;
  detail: string;
  recoverable: boolean;
}

/** The user's own change as `onChange` describes it. */
export interface OwnChange {
  changeId: string;
  label: string;
  type: string;
  /** The ops as the server applied them. */
  patches: PatchOp[];
}

/**
 * `connecting`, `open`, `waiting` (a ping went unanswered), `reconnecting`,
 * `failed` (after `onError`) or `closed` (by `close()`). Show an overlay while
 * `waiting` or `reconnecting`: changes cannot be synchronized then.
 */
export type Status = "connecting" | "open" | "waiting" | "reconnecting" | "failed" | "closed";

/** Timers the client uses; tests pass a fake one. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export interface CoeditOptions {
  /** Base URL of the REST API (the stack's `ApiUrl`). */
  api: string;
  sessionId: string;
  /** The WebSocket URL from the join answer. */
  url: string;
  /** The join token from the join answer. */
  token: string;
  /** Asked for a new join token when the current one has expired (the host backend issues it). */
  getToken?: () => Promise<string>;
  /** The user's own change, once the server stored it: the whole template, the change, its version (save it). */
  onChange?: (json: Template, change: OwnChange, version: number) => void;
  /** Someone else's change, in version order: the entry, the whole template, its version. */
  onRemoteChange?: (entry: HistoryEntry, json: Template, version: number) => void;
  onSessionChange?: (data: SessionChange) => void;
  onError?: (error: CoeditError) => void;
  onStatus?: (status: Status) => void;
  /** The template was reloaded whole (the server could not send the changes one by one). */
  onResync?: (json: Template, version: number) => void;
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
  clock?: Clock;
}

export declare const HEARTBEAT_MS: number;
export declare const MISSED_PINGS: number;
export declare const RECONNECT_WINDOW_MS: number;
/** A change refused as over the connection's rate limit (4029) is sent again after this. */
export declare const RATE_LIMITED_RETRY_MS: number;

export declare class CoeditClient {
  constructor(options: CoeditOptions);
  /** The template as the server has it at `version`. */
  readonly template: Template | null;
  readonly version: number;
  readonly state: Status | "idle";
  /** Loads the template, then connects; rejects with the error that stops it. */
  start(): Promise<void>;
  /** Sends a change made on the current template; resolves once stored. */
  edit(patch: PatchOp[], meta?: { label?: string; type?: string }): Promise<{ version: number }>;
  lock(target: string): Promise<{ granted: boolean; heldBy?: User }>;
  unlock(target: string): void;
  /** Stops for good. */
  close(): void;
}

/** Applies ops as the server sends them (indices resolved), in place; returns `doc`. */
export declare function applyPatch<T>(doc: T, ops: PatchOp[]): T;
