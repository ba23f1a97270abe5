// A page on another origin (the host's) calls the REST routes a browser uses with
// its join token: GET the session, its history and a version, and POST a change.
// Chromium enforces CORS, so each call succeeds only if the stack allows it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { chromium } from "playwright-core";
import { browserPath, skip, startStack } from "./stack.mjs";

/** The host's page, served from its own origin. */
function hostPage() {
  const server = createServer((_, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<!doctype html><title>host</title><p>host page</p>");
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

test("a page on another origin calls the browser's REST routes", { skip, timeout: 60_000 }, async () => {
  const { stack, base, apiKey } = await startStack();
  const host = await hostPage();
  const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
  try {
    // The host backend: a session and a join token (server to server, no CORS).
    const call = async (path, body) => {
      const res = await fetch(`${base}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${apiKey}` },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      assert.ok(res.ok, `${path}: ${res.status} ${text}`);
      return JSON.parse(text);
    };
    const template = { page: { rows: [] } };
    const { sessionId } = await call("/v1/coedit/session", { template, userid: "host" });
    const { token } = await call(`/v1/coedit/session/${sessionId}/join`, {
      userId: "ann", username: "Ann", userColor: "#c33",
    });

    const page = await browser.newPage();
    const origin = `http://127.0.0.1:${host.address().port}`;
    await page.goto(`${origin}/`);
    assert.notEqual(new URL(base).origin, origin);
    const results = await page.evaluate(async ({ base, sessionId, token }) => {
      const auth = { authorization: `Bearer ${token}` };
      const session = `${base}/v1/coedit/session/${sessionId}`;
      const out = {};
      const get = async (name, url) => {
        const res = await fetch(url, { headers: auth });
        out[name] = { status: res.status, body: await res.json() };
      };
      await get("session", session);
      await get("history", `${session}/history`);
      await get("version", `${session}/versions/1`);
      const res = await fetch(`${session}/changes`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({
          changeId: "c1", baseVersion: 1, label: "Row added", type: "row",
          patch: [{ op: "add", path: "/page/rows/-", value: { uuid: "r1", columns: [] } }],
        }),
      });
      out.change = { status: res.status, body: await res.json() };
      return out;
    }, { base, sessionId, token });

    assert.equal(results.session.status, 200);
    assert.deepEqual(results.session.body.template.page, { rows: [] });
    assert.equal(results.history.status, 200);
    assert.equal(results.history.body.entries[0].version, 1);
    assert.equal(results.version.status, 200);
    assert.equal(results.change.status, 200, JSON.stringify(results.change.body));
    assert.equal(results.change.body.version, 2);
  } finally {
    await browser.close();
    host.close();
    stack.kill();
  }
});
