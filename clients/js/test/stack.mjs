// What the browser tests share: the local stack binary started on free ports, and
// where Chromium is.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";

export const root = new URL("../../../", import.meta.url).pathname;
export const browserPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const stackPath = process.env.COEDIT_LOCAL_BIN ?? `${root}target/debug/coedit-local`;

/** Why the browser tests cannot run here (no Chromium, outside CI), or false. */
export const skip = !existsSync(browserPath) && !process.env.CI ? `no Chromium at ${browserPath}` : false;

/** Starts the local stack on free ports; resolves with its base URL and dev API key. */
export function startStack(args = []) {
  const stack = spawn(stackPath, ["--port", "0", "--ws-port", "0", ...args], {
    cwd: root,
    env: { ...process.env, RUST_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    stack.stdout.on("data", (chunk) => {
      out += chunk;
      const demo = out.match(/demo\s+(http:\/\/\S+?)\/\s/);
      const key = out.match(/dev API key\s+(ck_\S+)/);
      if (demo && key) resolve({ stack, base: demo[1], apiKey: key[1] });
    });
    stack.on("exit", (code) => reject(new Error(`the local stack exited (${code}): ${out}`)));
  });
}
