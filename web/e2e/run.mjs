// End-to-end test of the web app in headless Chromium (playwright-core + Debian's chromium,
// no browser download) against a real relay process: SQLite and blobs in a temporary folder,
// mail to an outbox folder, the built app served with --web-dir.
//
//   RELAY_BIN=target/debug/securechat-relay node e2e/run.mjs
//
// A and B sign up in two browser contexts, B adds A by ms_id, A accepts, they write both ways
// (ticks), A reloads and unlocks to read the history, B reloads remembered, A turns on TOTP
// with the secret read from the screen, logs out and back in with a code. Then the relay's
// database and blob folder are scanned for the plaintexts. Screenshots of every screen, light
// and dark, wide and narrow, go to SCREENSHOTS (default web/test-results/screenshots).

import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { deflateSync } from "node:zlib";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const here = new URL(".", import.meta.url).pathname;
const webDir = resolve(here, "..");
const dist = resolve(webDir, "dist");
const shots = resolve(process.env.SCREENSHOTS ?? join(webDir, "test-results", "screenshots"));
const relayBin = process.env.RELAY_BIN;
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const FIRST_SCREEN_BUDGET_MS = 1000;

if (!relayBin || !existsSync(relayBin)) throw new Error(`RELAY_BIN must name the relay binary (got ${relayBin})`);
if (!existsSync(join(dist, "index.html"))) throw new Error(`build the app first: ${dist}/index.html is missing`);

// ---------------------------------------------------------------------------------------------
// Small helpers

function log(text) {
  console.log(`e2e: ${text}`);
}

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s), from a base32 secret as the settings screen shows it. */
export function totp(secret, step) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of secret.replace(/[\s=]/gu, "").toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    bits += v.toString(2).padStart(5, "0");
  }
  const key = Buffer.from(bits.match(/.{8}/gu).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac("sha1", key).update(counter).digest();
  const offset = mac[mac.length - 1] & 0xf;
  const code = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(code).padStart(6, "0");
}

const currentStep = () => Math.floor(Date.now() / 1000 / 30);

/** A small PNG (a diagonal gradient), made here so that its bytes can be looked for later. */
function makePng(size) {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const byte of buf) c = table[(c ^ byte) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length);
    head.write(type, 4, "ascii");
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE(crc(Buffer.concat([head.subarray(4), data])));
    return Buffer.concat([head, data, tail]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < size; y += 1) {
    const row = Buffer.alloc(1 + size * 3);
    for (let x = 0; x < size; x += 1) row.set([(x * 255) / size, (y * 255) / size, 160], 1 + x * 3);
    rows.push(row);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}
const IMAGE = makePng(64);

function startRelay(dir) {
  return new Promise((resolveStart, reject) => {
    const child = spawn(
      relayBin,
      [
        "--database-url",
        `sqlite://${join(dir, "relay.db")}`,
        "--mail-url",
        `file://${join(dir, "outbox")}`,
        "--blob-dir",
        join(dir, "blobs"),
        "--secret-key-file",
        join(dir, "secret.key"),
        "--web-dir",
        dist,
      ],
      {
        env: {
          ...process.env,
          SECURECHAT_LISTEN: "127.0.0.1:0",
          SECURECHAT_DISABLE_RATE_LIMITS: "true",
          SECURECHAT_LOG: "warn",
        },
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error("the relay did not start within 120 s"));
    }, 120_000);
    let buffered = "";
    child.stdout.on("data", (chunk) => {
      buffered += chunk.toString();
      const match = /SecureChat relay listening on (\S+)/u.exec(buffered);
      if (match) {
        clearTimeout(timer);
        resolveStart({ child, url: match[1] });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the relay exited early (${code})`));
    });
  });
}

function filesUnder(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

// Every screen in four looks: light and dark, wide and narrow.
const LOOKS = [
  { scheme: "light", width: 1280, height: 800, tag: "light-wide" },
  { scheme: "dark", width: 1280, height: 800, tag: "dark-wide" },
  { scheme: "light", width: 390, height: 844, tag: "light-narrow" },
  { scheme: "dark", width: 390, height: 844, tag: "dark-narrow" },
];
const shotNames = [];

// axe-core, evaluated through the DevTools protocol (a <script> tag would be refused by the CSP).
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const accessibility = [];
const problems = [];

/** Runs axe-core on the page; serious and critical violations fail the test. */
async function checkAccessibility(page, name) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    const found = await page.evaluate(async () => {
      const result = await window.axe.run(document, { resultTypes: ["violations"] });
      return result.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).slice(0, 4).join(", ")}`);
    });
    accessibility.push(`${name} ${scheme}: ${found.length}`);
    for (const v of found) problems.push(`accessibility, ${name} (${scheme}): ${v}`);
  }
  await page.emulateMedia({ colorScheme: "light" });
}

async function shoot(page, name, beforeNarrow) {
  const size = page.viewportSize();
  for (const look of LOOKS) {
    await page.emulateMedia({ colorScheme: look.scheme });
    await page.setViewportSize({ width: look.width, height: look.height });
    if (look.width < 720 && beforeNarrow) await beforeNarrow();
    await page.waitForTimeout(50); // one frame for the layout and the theme to settle
    const file = join(shots, `${name}-${look.tag}.png`);
    await page.screenshot({ path: file });
    shotNames.push(file);
  }
  await page.emulateMedia({ colorScheme: "light" });
  if (size) await page.setViewportSize(size);
}

// ---------------------------------------------------------------------------------------------
// The scenario

const PASSWORD_A = "correct horse battery staple";
const PASSWORD_B = "purple elephant juggles quietly";
const TEXTS = {
  aToB: "Hello Bob, it is Ada. The quokka sings at dawn 🦘",
  bToA: "Hi Ada! Bob here: meet at the lighthouse 42",
  bMultiline: "first line of the zebra plan\nsecond line of the zebra plan",
  aAfterLogin: "Back with a second factor: marmalade protocol",
  aToRoom: "Welcome to the lighthouse club, tangerine agenda",
  bToRoom: "Glad to be in the club: walrus minutes attached",
  imageCaption: "The gradient from the harbour, caption in cipher",
};

async function signUp(page, { email, name, msId, password, remember }) {
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Display name").fill(name);
  await page.getByLabel("ms_id", { exact: true }).fill(msId);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByText(`@${msId} is available.`).waitFor();
  await page.getByText(/^(Strong|Very strong|Fair)$/u).waitFor();
  if (remember) await page.getByLabel(/Remember me/u).check();
}

async function waitOnline(page) {
  await page.getByTestId("connection").filter({ hasText: "Online" }).waitFor({ timeout: 60_000 });
}

async function send(page, text) {
  const box = page.getByLabel("Message", { exact: true });
  const lines = text.split("\n");
  await box.click();
  for (const [i, line] of lines.entries()) {
    if (i > 0) await box.press("Shift+Enter");
    await box.pressSequentially(line, { delay: 0 });
  }
  await box.press("Enter");
}

async function main() {
  mkdirSync(shots, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), "securechat-web-e2e-"));
  const { child: relay, url } = await startRelay(dir);
  log(`relay at ${url}, data in ${dir}`);
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  try {
    const contextA = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "light" });
    const contextB = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "light" });
    await contextA.grantPermissions(["clipboard-read", "clipboard-write"], { origin: url });
    // Failure bounds, not speed requirements: generous for two busy cores.
    contextA.setDefaultTimeout(60_000);
    contextB.setDefaultTimeout(60_000);
    const a = await contextA.newPage();
    const b = await contextB.newPage();
    for (const [who, page] of [
      ["A", a],
      ["B", b],
    ]) {
      // Anything the CSP blocks, and any uncaught error, fails the test.
      page.on("console", (m) => {
        // Chromium logs every 4xx answer; the test provokes some (wrong password, unknown
        // ms_id, wrong code), and the page shows them. Anything else is a problem.
        if (m.type() === "error" && !/^Failed to load resource: the server responded with a status of 4\d\d/u.test(m.text())) {
          problems.push(`${who} console: ${m.text()}`);
        }
      });
      page.on("pageerror", (e) => problems.push(`${who} page error: ${e.message}`));
    }

    // First screen: the log-in form, usable.
    await a.goto(url);
    await a.waitForSelector("body[data-ready]");
    await a.getByRole("button", { name: "Log in" }).waitFor();
    const ready = Number(await a.evaluate(() => document.body.dataset.ready));
    // Printed, not asserted: on a loaded CI machine a duration is no verdict (docs/testing.md).
    console.log(`first screen usable: ${ready} ms (goal ${FIRST_SCREEN_BUDGET_MS} ms${ready > FIRST_SCREEN_BUDGET_MS ? ", MISSED" : ""})`);
    await checkAccessibility(a, "login");
    await shoot(a, "01-login");

    // A relay error in plain words next to what caused it: a wrong password.
    await a.getByLabel("E-mail").fill("nobody@example.org");
    await a.getByLabel("Password", { exact: true }).fill("not the password at all");
    await a.getByRole("button", { name: "Log in", exact: true }).click();
    await a.locator("#password-error").filter({ hasText: "Wrong e-mail address or password." }).waitFor();
    await shoot(a, "02-login-error");

    // Sign up A (not remembered) and B (remembered).
    await signUp(a, { email: "ada@example.org", name: "Ada Lovelace", msId: "ada", password: PASSWORD_A, remember: false });
    await checkAccessibility(a, "signup");
    await shoot(a, "03-signup");
    await a.getByRole("button", { name: "Create account" }).click();
    await waitOnline(a);
    await shoot(a, "04-empty-chats");

    await b.goto(url);
    await b.getByRole("button", { name: "Log in" }).waitFor();
    await signUp(b, { email: "bob@example.org", name: "Bob Stone", msId: "bob", password: PASSWORD_B, remember: true });
    // A taken ms_id is explained before sending.
    await b.getByLabel("ms_id", { exact: true }).fill("ada");
    await b.getByText("@ada is taken. Try another one.").waitFor();
    await b.getByLabel("ms_id", { exact: true }).fill("bob");
    await b.getByText("@bob is available.").waitFor();
    await b.getByRole("button", { name: "Create account" }).click();
    await waitOnline(b);

    // B adds A by ms_id (after a typo the relay does not know).
    await b.getByRole("button", { name: "Friends" }).click();
    await b.getByLabel("Friend's ms_id").fill("no-such-user");
    await b.getByRole("button", { name: "Send request" }).click();
    await b.locator("#add-error").filter({ hasText: "Not found." }).waitFor();
    await b.getByLabel("Friend's ms_id").fill("ada");
    await b.getByRole("button", { name: "Send request" }).click();
    await b.getByText("Request sent to @ada.", { exact: false }).waitFor();
    await b.getByRole("list", { name: "Outgoing friend requests" }).getByText("Ada Lovelace").waitFor();
    await shoot(b, "05-friends-outgoing");

    // A sees the request (live), accepts.
    await a.getByRole("button", { name: /Friends,?\s*1 new request/u }).waitFor({ timeout: 60_000 });
    await a.getByRole("button", { name: /Friends/u }).click();
    await a.getByRole("button", { name: "Accept bob" }).waitFor();
    await checkAccessibility(a, "friends");
    await shoot(a, "06-friends-incoming");
    await a.getByRole("button", { name: "Accept bob" }).click();
    await a.getByRole("list", { name: "Friends" }).getByText("Bob Stone").waitFor();
    await shoot(a, "07-friends");

    // A writes to B; the tick reaches "delivered".
    await a.getByRole("button", { name: "Message bob" }).click();
    await shoot(a, "08-chat-empty", async () => undefined);
    await send(a, TEXTS.aToB);
    const aFirst = a.getByTestId("message").filter({ hasText: TEXTS.aToB });
    await aFirst.waitFor();
    await a.locator('[data-testid="message"][data-status="delivered"]').filter({ hasText: TEXTS.aToB }).waitFor({ timeout: 60_000 });

    // B sees it in the list with an unread badge, opens it, answers twice (Shift+Enter).
    await b.getByRole("button", { name: "Chats" }).click();
    const convA = b.getByTestId("conv-ada");
    await convA.getByTestId("unread").filter({ hasText: "1" }).waitFor({ timeout: 60_000 });
    await shoot(b, "09-chat-list-unread");
    await convA.click();
    await b.getByTestId("message").filter({ hasText: TEXTS.aToB }).waitFor();
    await send(b, TEXTS.bToA);
    await send(b, TEXTS.bMultiline);
    await b.locator('[data-testid="message"][data-status="delivered"]').filter({ hasText: "second line of the zebra plan" }).waitFor({ timeout: 60_000 });
    const multiline = await b.getByTestId("message").filter({ hasText: "zebra" }).locator(".text").innerText();
    if (multiline !== TEXTS.bMultiline) problems.push(`Shift+Enter: expected two lines, got ${JSON.stringify(multiline)}`);
    await a.getByTestId("message").filter({ hasText: TEXTS.bToA }).waitFor({ timeout: 60_000 });
    await a.getByTestId("message").filter({ hasText: "zebra" }).waitFor({ timeout: 60_000 });
    // An image with a caption: picked, encrypted, uploaded, shown decrypted on the other side.
    await a.getByLabel("Message", { exact: true }).fill(TEXTS.imageCaption);
    await a.getByTestId("file-input").setInputFiles({ name: "harbour.png", mimeType: "image/png", buffer: IMAGE });
    const thumbnail = b.getByRole("img", { name: "harbour.png" });
    await thumbnail.waitFor({ timeout: 60_000 });
    const src = await thumbnail.getAttribute("src");
    if (!src?.startsWith("data:image/png;base64,") || !Buffer.from(src.split(",")[1] ?? "", "base64").equals(IMAGE)) {
      problems.push("B's thumbnail is not the image A sent");
    }
    await b.getByTestId("message").filter({ hasText: TEXTS.imageCaption }).waitFor();
    await a.getByRole("img", { name: "harbour.png" }).waitFor({ timeout: 60_000 });
    await checkAccessibility(a, "chat");
    await shoot(a, "10-chat");
    await shoot(b, "11-chat-other-side");

    // A room: A creates it and invites B, B joins from the Friends panel, both write.
    await a.getByRole("button", { name: /Friends/u }).click();
    await a.getByLabel("Room name").fill("Lighthouse club");
    await a.getByRole("button", { name: "Create room" }).click();
    await a.getByRole("heading", { name: "Lighthouse club" }).waitFor();
    await a.getByRole("button", { name: "Members" }).click();
    await a.getByLabel("Friend to invite").selectOption("bob");
    await a.getByRole("button", { name: "Invite", exact: true }).click();
    await a.getByRole("region", { name: "Room members" }).getByText("@bob · invited").waitFor();
    await checkAccessibility(a, "room");
    await shoot(a, "12-room-members");
    await b.getByRole("button", { name: /Friends/u }).click();
    await b.getByRole("button", { name: "Join Lighthouse club" }).waitFor({ timeout: 60_000 });
    await shoot(b, "13-room-invitation");
    await b.getByRole("button", { name: "Join Lighthouse club" }).click();
    await b.getByRole("heading", { name: "Lighthouse club" }).waitFor();
    await a.getByRole("region", { name: "Room members" }).getByText("@bob", { exact: true }).waitFor({ timeout: 60_000 });
    await send(a, TEXTS.aToRoom);
    await b.getByTestId("message").filter({ hasText: TEXTS.aToRoom }).waitFor({ timeout: 60_000 });
    await b.getByTestId("message").filter({ hasText: TEXTS.aToRoom }).getByText("Ada Lovelace").waitFor();
    await send(b, TEXTS.bToRoom);
    await a.getByTestId("message").filter({ hasText: TEXTS.bToRoom }).waitFor({ timeout: 60_000 });
    // A message arriving in the open conversation is read at once: no unread badge for it.
    await a
      .locator(".conv")
      .filter({ hasText: "Glad to be in the club" })
      .filter({ hasNot: a.getByTestId("unread") })
      .waitFor({ timeout: 60_000 });
    await shoot(b, "14-room-chat");

    // A reloads: not remembered, so the unlock screen; the history is read from the store.
    await a.reload();
    await a.getByRole("heading", { name: "Unlock SecureChat" }).waitFor();
    await checkAccessibility(a, "unlock");
    await shoot(a, "15-unlock");
    await a.getByLabel("Password", { exact: true }).fill("wrong password entirely");
    await a.getByRole("button", { name: "Unlock" }).click();
    await a.locator("#password-error").filter({ hasText: "Wrong password." }).waitFor({ timeout: 60_000 });
    await a.getByLabel("Password", { exact: true }).fill(PASSWORD_A);
    await a.getByRole("button", { name: "Unlock" }).click();
    await waitOnline(a);
    await a.getByTestId("conv-bob").click();
    for (const text of [TEXTS.aToB, TEXTS.bToA]) await a.getByTestId("message").filter({ hasText: text }).waitFor();
    // Presence (the relay tells it at connect time): B is online.
    await a.locator(".chat-head").getByText("@bob · online").waitFor({ timeout: 60_000 });

    // B reloads: remembered, opens by itself.
    await b.reload();
    await waitOnline(b);
    await b.getByTestId("conv-ada").click();
    await b.getByTestId("message").filter({ hasText: TEXTS.bToA }).waitFor();

    // A turns on TOTP with the secret on screen.
    await a.getByRole("button", { name: "Settings" }).click();
    await a.getByRole("button", { name: "Set up authenticator app" }).waitFor();
    await shoot(a, "16-settings");
    await a.getByLabel("Your password, to confirm").fill(PASSWORD_A);
    await a.getByRole("button", { name: "Set up authenticator app" }).click();
    const secret = await a.getByTestId("totp-secret").getAttribute("data-secret");
    const shown = (await a.getByTestId("totp-secret").innerText()).replace(/\s+/gu, "");
    if (!secret || shown !== secret) problems.push(`the secret on screen (${shown}) is not the secret (${secret})`);
    await checkAccessibility(a, "settings");
    await shoot(a, "17-totp-setup");
    // A wrong code is explained next to the field.
    await a.getByLabel("Code from the app").fill(totp(secret, currentStep() + 20));
    await a.getByRole("button", { name: "Turn on" }).click();
    await a.locator("#totp-code-error").waitFor();
    const activationStep = currentStep();
    await a.getByLabel("Code from the app").fill(totp(secret, activationStep));
    await a.getByRole("button", { name: "Turn on" }).click();
    await a.getByTestId("recovery-codes").waitFor();
    await a.getByText("Logging in asks for a code").waitFor();
    await shoot(a, "18-totp-on");

    // Log out, log in again with a TOTP code (of a later step: the relay refuses replays).
    await a.getByRole("button", { name: "Log out", exact: true }).click();
    await a.getByText("You are logged out.").waitFor();
    await a.getByLabel("E-mail").fill("ada@example.org");
    await a.getByLabel("Password", { exact: true }).fill(PASSWORD_A);
    await a.getByRole("button", { name: "Log in", exact: true }).click();
    await a.getByRole("heading", { name: "Two-step sign-in" }).waitFor({ timeout: 60_000 });
    await checkAccessibility(a, "two-factor");
    await shoot(a, "19-two-factor");
    while (currentStep() <= activationStep) await a.waitForTimeout(500);
    await a.getByLabel(/6-digit code/u).fill(totp(secret, currentStep()));
    await a.getByRole("button", { name: "Confirm" }).click();
    await waitOnline(a);
    await a.getByTestId("conv-bob").click();
    await a.getByTestId("message").filter({ hasText: TEXTS.bToA }).waitFor();
    await send(a, TEXTS.aAfterLogin);
    await b.getByTestId("message").filter({ hasText: TEXTS.aAfterLogin }).waitFor({ timeout: 60_000 });
    await a.locator('[data-testid="message"][data-status="delivered"]').filter({ hasText: TEXTS.aAfterLogin }).waitFor({ timeout: 60_000 });
    await shoot(a, "20-chat-after-2fa");

    await contextA.close();
    await contextB.close();
  } finally {
    await browser.close();
    relay.kill("SIGTERM");
    await new Promise((r) => (relay.exitCode === null ? relay.once("exit", r) : r()));
  }

  // The relay's database (with its WAL) and blob folder hold none of the plaintexts.
  const stored = filesUnder(dir).filter((f) => !f.includes(`${join(dir, "outbox")}`));
  if (!stored.some((f) => f.endsWith("relay.db"))) problems.push("the relay database file was not found");
  if (!stored.some((f) => f.includes(`${join(dir, "blobs")}`))) problems.push("the image's blob was not found");
  for (const file of stored) {
    const bytes = readFileSync(file);
    if (bytes.includes(IMAGE) || bytes.includes(IMAGE.subarray(33, 33 + 64))) problems.push(`${file} contains the image`);
    for (const text of Object.values(TEXTS)) {
      for (const needle of [text, ...text.split("\n")]) {
        if (bytes.includes(Buffer.from(needle, "utf8"))) problems.push(`${file} contains the plaintext ${JSON.stringify(needle)}`);
      }
    }
  }
  log(`scanned ${stored.length} relay files for ${Object.keys(TEXTS).length} plaintexts`);
  rmSync(dir, { recursive: true, force: true });

  log(`${shotNames.length} screenshots in ${shots}`);
  log(`axe-core, serious or critical violations: ${accessibility.join("; ")}`);
  if (problems.length > 0) {
    for (const p of problems) console.error(`e2e problem: ${p}`);
    process.exit(1);
  }
  log("passed");
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
