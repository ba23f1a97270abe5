// The demo page in headless Chromium against the real local stack: two users join
// one session in two pages, one edits a module, the other sees the new text and
// version. Screenshots are kept in target/demo/.
//
//   node --test clients/js/test/   (after `cargo build -p coedit-local`)
//
// Needs Debian's chromium (/usr/bin/chromium, or CHROMIUM_PATH); without it the
// test is skipped, except under CI, where it must run.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";
import { browserPath, root, skip, startStack } from "./stack.mjs";

const shots = `${root}target/demo`;

test("two pages co-edit one template through the local stack", { skip, timeout: 60_000 }, async () => {
  mkdirSync(shots, { recursive: true });
  const { stack, base } = await startStack();
  const browser = await chromium.launch({ executablePath: browserPath, args: ["--no-sandbox"] });
  try {
    const ann = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    await ann.goto(`${base}/`);
    await ann.selectOption("select[name=template]", "starter");
    await ann.fill("input[name=user]", "Ann");
    await ann.click("button");
    await ann.waitForSelector(".module[data-uuid=mod-left]");
    const session = new URL(ann.url()).searchParams.get("session");
    assert.match(session, /^[0-9a-f-]{36}$/);

    const bob = await browser.newPage({ viewport: { width: 1100, height: 700 } });
    await bob.goto(`${base}/?session=${session}&user=Bob`);
    await bob.waitForSelector(".module[data-uuid=mod-left]");
    // Each sees both avatars.
    await ann.waitForFunction(() => document.querySelectorAll(".avatar").length === 2);
    await bob.waitForFunction(() => document.querySelectorAll(".avatar").length === 2);

    // Ann takes the module: Bob sees it held, in her color, with her name.
    await ann.click(".module[data-uuid=mod-left]");
    await ann.waitForSelector(".module[data-uuid=mod-left] textarea");
    await bob.waitForSelector(".module.locked[data-uuid=mod-left] .holder");
    assert.equal(await bob.textContent(".module[data-uuid=mod-left] .holder"), "Ann");

    // She types; Bob gets the text and the version.
    await ann.fill(".module[data-uuid=mod-left] textarea", "Hello from Ann");
    await bob.waitForFunction(
      () => document.querySelector(".module[data-uuid=mod-left]")?.textContent.includes("Hello from Ann"),
    );
    await bob.waitForFunction(() => document.getElementById("version").textContent === "v2");
    assert.equal(await ann.textContent("#version"), "v2");
    assert.match(await bob.textContent("#history"), /v2 ann · Text changed/);
    await bob.screenshot({ path: `${shots}/bob-sees-ann-editing.png` });
    await ann.screenshot({ path: `${shots}/ann-editing.png` });

    // She is done: the module is free again for Bob.
    await ann.click("header h1");
    await bob.waitForSelector(".module[data-uuid=mod-left]:not(.locked)");
    await bob.click(".module[data-uuid=mod-left]");
    await bob.waitForSelector(".module[data-uuid=mod-left] textarea");

    // Bob holds a block of the middle row: Ann cannot take the row, and is told by whom.
    await ann.click(".row[data-uuid=row-body] .rowlock");
    await ann.waitForFunction(() => document.getElementById("notice").textContent.includes("Bob"));
    // Once Bob is done, Ann takes the row; Bob sees it held, and is told when he tries a block in it.
    await bob.click("header h1");
    await ann.waitForSelector(".module[data-uuid=mod-left]:not(.locked)");
    await ann.click(".row[data-uuid=row-body] .rowlock");
    await bob.waitForSelector(".row.locked[data-uuid=row-body] .holder");
    assert.equal(await bob.textContent(".row[data-uuid=row-body] > .holder"), "Ann");
    await bob.click(".module[data-uuid=mod-right]");
    await bob.waitForFunction(() => document.getElementById("notice").textContent.includes("Ann"));
    await bob.screenshot({ path: `${shots}/bob-sees-ann-holding-a-row.png` });
  } finally {
    await browser.close();
    stack.kill();
  }
});
