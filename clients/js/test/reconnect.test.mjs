// The reconnect contract in Chromium against the real local stack, on a DynamoDB
// Local that outlives it: two pages co-editing; the stack dies → both show the
// overlay; it comes back on the same ports within 60 s → both resume, nothing
// lost, editing goes on; it dies again and stays away → 5400 after 60 s.
//
// Needs the DynamoDB Local that scripts/test starts (COEDIT_TEST_DYNAMODB_ENDPOINT);
// skipped without it or without Chromium, except in CI.

import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chromium } from "playwright-core";
import { browserPath, kill, skip as noBrowser, startStack } from "./stack.mjs";

const dynamodb = process.env.COEDIT_TEST_DYNAMODB_ENDPOINT;
const skip = noBrowser || (!dynamodb && !process.env.CI ? "no DynamoDB Local (run scripts/test)" : false);

test("pages ride out a stack restart and report 5400 when it stays away", { skip, timeout: 240_000 }, async () => {
  const env = {
    COEDIT_JOIN_TOKEN_SECRET: randomBytes(48).toString("base64"),
    COEDIT_DEV_API_KEY: `ck_${randomBytes(24).toString("hex")}`,
  };
  const table = `reconnect-${randomBytes(6).toString("hex")}`;
  const storage = ["--dynamodb-endpoint", dynamodb, "--table", table];
  let { stack, base, port, wsPort } = await startStack(storage, env);
  const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
  try {
    const created = await (await fetch(`${base}/demo/session`, { method: "POST", body: JSON.stringify({ template: "starter" }) })).json();
    const ann = await browser.newPage();
    const bob = await browser.newPage();
    await ann.goto(`${base}/?session=${created.sessionId}&user=Ann`);
    await bob.goto(`${base}/?session=${created.sessionId}&user=Bob`);
    for (const page of [ann, bob]) await page.waitForSelector(".module[data-uuid=mod-left]");
    await ann.click(".module[data-uuid=mod-left]");
    await ann.fill(".module[data-uuid=mod-left] textarea", "Before the outage");
    await bob.waitForFunction(() => document.getElementById("version").textContent === "v2");
    await ann.click("header h1");

    // The stack dies: both pages cover the editor.
    await kill(stack);
    for (const page of [ann, bob]) await page.waitForSelector("#overlay:not([hidden])", { timeout: 30_000 });

    // Back within the minute, on the same ports: both resume, and editing goes on.
    ({ stack } = await startStack(["--port", port, "--ws-port", wsPort, ...storage], env));
    for (const page of [ann, bob]) await page.waitForSelector("#overlay[hidden]", { state: "attached", timeout: 45_000 });
    await bob.click(".module[data-uuid=mod-right]");
    await bob.waitForSelector(".module[data-uuid=mod-right] textarea");
    await bob.fill(".module[data-uuid=mod-right] textarea", "After the outage");
    await ann.waitForFunction(() => document.getElementById("version").textContent === "v3", null, { timeout: 30_000 });
    await bob.click("header h1");
    for (const page of [ann, bob]) {
      const texts = await page.textContent("#rows");
      assert.match(texts, /Before the outage/);
      assert.match(texts, /After the outage/);
      assert.equal(await page.textContent("#version"), "v3");
    }

    // Gone for good: after 60 s of trying, each page reports 5400 and stops.
    await kill(stack);
    const started = Date.now();
    for (const page of [ann, bob]) {
      await page.waitForFunction(() => document.getElementById("overlay-text").textContent.includes("(5400)"), null, { timeout: 100_000 });
    }
    assert.ok(Date.now() - started >= 55_000, "not before the minute");
    assert.match(await ann.textContent("#status"), /^5400: /);
  } finally {
    await browser.close();
    await kill(stack);
  }
});
