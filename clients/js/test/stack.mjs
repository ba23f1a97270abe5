// What the browser tests share: the local stack binary started on free ports, and
// where Chromium is.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

export const root = new URL("../../../", import.meta.url).pathname;
export const browserPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const stackPath = process.env.COEDIT_LOCAL_BIN ?? `${root}target/debug/coedit-local`;

/** Why the browser tests cannot run here (no Chromium, outside CI), or false. */
export const skip = !existsSync(browserPath) && !process.env.CI ? `no Chromium at ${browserPath}` : false;

/**
 * Starts the local stack (on free ports unless `args` name them); resolves with
 * its REST base URL, its WebSocket and REST ports, and its dev API key.
 */
export function startStack(args = [], env = {}) {
  const ports = args.includes("--port") ? [] : ["--port", "0", "--ws-port", "0"];
  const stack = spawn(stackPath, [...ports, ...args], {
    cwd: root,
    env: { ...process.env, RUST_LOG: "warn", ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    stack.stdout.on("data", (chunk) => {
      out += chunk;
      const demo = out.match(/demo\s+(http:\/\/\S+?)\/\s/);
      const ws = out.match(/WebSocket\s+ws:\/\/127\.0\.0\.1:(\d+)\//);
      const key = out.match(/dev API key\s+(ck_\S+)/);
      if (demo && ws && key) {
        resolve({ stack, base: demo[1], apiKey: key[1], port: new URL(demo[1]).port, wsPort: ws[1] });
      }
    });
    stack.on("exit", (code) => reject(new Error(`the local stack exited (${code}): ${out}`)));
  });
}

/** Stops a stack as a crash would, and waits until it is gone. */
export function kill(stack) {
  return new Promise((resolve) => {
    if (stack.exitCode !== null || stack.signalCode !== null) return resolve();
    stack.removeAllListeners("exit");
    stack.on("exit", () => resolve());
    stack.kill("SIGKILL");
  });
}
