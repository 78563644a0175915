// Drives the Microsoft 365 Agents Playground's web UI with headless Chromium, the way a person
// would: open the personal chat, paste a message, press Enter, click card buttons, read the chat.
//
//   node playground_driver.mjs SCENARIO.json
//
// SCENARIO.json: {"url": "http://127.0.0.1:PORT/", "out": "/tmp/dir", "timeout_ms": 20000,
//                 "steps": [{"do": "...", ...}, ...]}
// Steps: {"do": "open_chat", "name": "Personal Chat"}, {"do": "expect_text", "text": "..."},
//        {"do": "paste", "text": "..."} (pastes into the compose box and sends it with Enter),
//        {"do": "click", "button": "title"} (the newest button with that title),
//        {"do": "pick", "choice": "title"} (ticks that choice in the newest list of choices),
//        {"do": "expect_unchecked", "choice": "title"} (no choice of that list is ticked),
//        {"do": "expect_no_text", "text": "...", "ms": 3000} (waits, then fails if it is shown),
//        {"do": "screenshot", "name": "..."}.
// Prints one JSON line per step, then {"ok": true|false, ...} last; exits 1 on failure, after
// saving failure.png and failure.html in "out". Every request to a host other than the loopback
// address is aborted, so the page can reach nothing but the Playground.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const scenario = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const timeout = scenario.timeout_ms ?? 20000;
const out = scenario.out;
const executablePath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const say = (record) => process.stdout.write(JSON.stringify(record) + '\n');

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'playground-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 1400, height: 1000 },
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
    '--dns-prefetch-disable',
  ],
});
const blocked = new Set();
await context.route('**/*', (route) => {
  const url = new URL(route.request().url());
  if (['data:', 'blob:'].includes(url.protocol) || LOOPBACK.has(url.hostname)) {
    return route.continue();
  }
  blocked.add(url.origin);
  return route.abort('blockedbyclient');
});
const page = context.pages()[0] ?? (await context.newPage());
page.setDefaultTimeout(timeout);
const pageErrors = [];
page.on('pageerror', (error) => pageErrors.push(String(error)));

// The chat pane: the Playground shows each message there, and the same text again in the chat
// list (a tree) and in the log panel, so text and buttons are looked up in the pane only, newest
// last. The pane is the outermost block around the compose box that holds neither of the others.
const COMPOSE = '[data-lexical-editor="true"][role="textbox"]';
const chatPane = () =>
  page
    .locator(COMPOSE)
    .locator(
      'xpath=ancestor::div[not(.//*[@role="tree"]) and ' +
        'not(.//*[normalize-space(text())="Log Panel"])][last()]',
    );
const compose = () => page.locator(COMPOSE);

async function expectText(text) {
  await chatPane().getByText(text, { exact: false }).last().waitFor({ state: 'visible' });
}

async function paste(text) {
  const box = compose();
  await box.click();
  // A real paste event, as Ctrl+V makes it: the editor reads the clipboard data of the event.
  await box.evaluate((element, pasted) => {
    const data = new DataTransfer();
    data.setData('text/plain', pasted);
    element.dispatchEvent(
      new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }),
    );
  }, text);
  const firstLine = text.split('\n').find((line) => line.trim()) ?? '';
  await page.waitForFunction(
    ([selector, expected]) => document.querySelector(selector)?.innerText.includes(expected),
    [COMPOSE, firstLine.trim()],
  );
  await box.press('Enter');
  await page.waitForFunction(
    (selector) => (document.querySelector(selector)?.innerText ?? '').trim() === '',
    COMPOSE,
  );
}

async function click(title) {
  const button = chatPane().getByRole('button', { name: title, exact: true }).last();
  await button.waitFor({ state: 'visible' });
  await button.click();
}

async function pick(title) {
  const choice = chatPane().getByRole('radio', { name: title, exact: true }).last();
  await choice.waitFor({ state: 'visible' });
  await choice.check();
}

async function expectUnchecked(title) {
  const choice = chatPane().getByRole('radio', { name: title, exact: true }).last();
  await choice.waitFor({ state: 'visible' });
  const group = choice.locator('xpath=ancestor::*[@role="radiogroup"][1]');
  const list = (await group.count()) > 0 ? group : chatPane();
  const ticked = await list.getByRole('radio', { checked: true }).count();
  if (ticked > 0) {
    throw new Error(`${ticked} choice(s) ticked in the list of ${JSON.stringify(title)}`);
  }
}

async function expectNoText(text, ms) {
  await page.waitForTimeout(ms);
  const shown = await chatPane().getByText(text, { exact: false }).count();
  if (shown > 0) {
    throw new Error(`${JSON.stringify(text)} is shown ${shown} time(s), and must not be`);
  }
}

async function transcript() {
  return chatPane().innerText().catch(() => '');
}

let number = 0;
let current = null;
try {
  await page.goto(scenario.url, { waitUntil: 'domcontentloaded' });
  for (const step of scenario.steps) {
    number += 1;
    current = step;
    const started = Date.now();
    if (step.do === 'open_chat') {
      await page.getByText(step.name, { exact: true }).first().click();
      await compose().waitFor({ state: 'visible' });
    } else if (step.do === 'expect_text') {
      await expectText(step.text);
    } else if (step.do === 'paste') {
      await paste(step.text);
    } else if (step.do === 'click') {
      await click(step.button);
    } else if (step.do === 'pick') {
      await pick(step.choice);
    } else if (step.do === 'expect_unchecked') {
      await expectUnchecked(step.choice);
    } else if (step.do === 'expect_no_text') {
      await expectNoText(step.text, step.ms ?? 3000);
    } else if (step.do === 'screenshot') {
      await page.screenshot({ path: path.join(out, `${step.name}.png`) });
    } else {
      throw new Error(`unknown step ${JSON.stringify(step)}`);
    }
    say({ step: number, do: step.do, ms: Date.now() - started });
  }
  await page.screenshot({ path: path.join(out, 'done.png') });
  say({ ok: true, transcript: await transcript(), blocked: [...blocked], pageErrors });
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
  process.exit(0);
} catch (error) {
  const shot = path.join(out, 'failure.png');
  await page.screenshot({ path: shot }).catch(() => {});
  fs.writeFileSync(path.join(out, 'failure.html'), await page.content().catch(() => ''));
  say({
    ok: false,
    step: number,
    failed: current,
    error: String(error?.message ?? error)
      .replace(/\u001b\[[0-9;]*m/g, '')
      .split('\n')
      .slice(0, 6)
      .join('\n'),
    screenshot: shot,
    transcript: await transcript(),
    blocked: [...blocked],
    pageErrors,
  });
  await context.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}
