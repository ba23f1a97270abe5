// The client as a SaaS team installs it: `npm pack` makes a tarball, an empty
// project installs it, imports it by name, and TypeScript checks a host page's
// code against its declarations.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const here = new URL("..", import.meta.url).pathname;
const root = new URL("../../../", import.meta.url).pathname;

test("npm pack makes a package an empty project installs, imports and type-checks", { timeout: 120_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), "coedit-pack-"));
  execFileSync("npm", ["pack", "--pack-destination", out, "--silent"], { cwd: here });
  const tarball = readdirSync(out).find((f) => f.endsWith(".tgz"));
  assert.match(tarball, /^coedit-client-\d+\.\d+\.\d+\.tgz$/);
  const listing = execFileSync("tar", ["tzf", join(out, tarball)]).toString().split("\n").filter(Boolean).sort();
  assert.deepEqual(listing, ["package/README.md", "package/coedit.d.ts", "package/coedit.js", "package/package.json"]);

  const project = mkdtempSync(join(tmpdir(), "coedit-host-"));
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "host", private: true, type: "module" }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--silent", join(out, tarball)], { cwd: project });
  const imported = execFileSync("node", ["--input-type=module", "-e", `
    import { CoeditClient, applyPatch, RECONNECT_WINDOW_MS } from "@coedit/client";
    const doc = applyPatch({ page: { rows: [] } }, [{ op: "add", path: "/page/rows/-", value: 1 }]);
    console.log(JSON.stringify({ client: typeof CoeditClient, rows: doc.page.rows, window: RECONNECT_WINDOW_MS }));
  `], { cwd: project }).toString();
  assert.deepEqual(JSON.parse(imported), { client: "function", rows: [1], window: 60000 });

  // A host page's code, checked against the declarations (and a mistake caught).
  writeFileSync(join(project, "page.ts"), `
    import { CoeditClient, type CoeditError, type SessionChange } from "@coedit/client";
    const client = new CoeditClient({
      api: "https://api.example.com/v1", sessionId: "s", url: "wss://ws.example.com/v1", token: "t",
      getToken: async () => "t2",
      onChange: (json, change, version) => console.log(json.page, change.patches.length, version + 1),
      onRemoteChange: (entry, json, version) => console.log(entry.userId, json.comments, version),
      onSessionChange: (data: SessionChange) => console.log(Object.keys(data.sessionData.users), data.change.type),
      onError: (e: CoeditError) => console.log(e.code, e.recoverable),
      onStatus: (s) => { if (s === "reconnecting") console.log("overlay"); },
    });
    export async function go(): Promise<number> {
      await client.start();
      const { version } = await client.edit([{ op: "replace", path: "/page/title", value: "x" }], { label: "Title" });
      const { granted } = await client.lock("row-1");
      return granted ? version : client.version;
    }
  `);
  writeFileSync(join(project, "wrong.ts"), `
    import { CoeditClient } from "@coedit/client";
    new CoeditClient({ api: "a", sessionId: "s", url: "u", token: 7 });
  `);
  const tsc = join(root, "node_modules/.bin/tsc");
  const flags = ["--noEmit", "--strict", "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022", "--lib", "es2022,dom"];
  execFileSync(tsc, [...flags, "page.ts"], { cwd: project });
  assert.throws(
    () => execFileSync(tsc, [...flags, "wrong.ts"], { cwd: project, stdio: "pipe" }),
    (e) => /Type 'number' is not assignable to type 'string'/.test(e.stdout.toString()),
  );
});
