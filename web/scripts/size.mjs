// The size budget of the app (issue #13): JavaScript + CSS loaded for the first screen must
// stay at or under 150 KB gzip. The password dictionaries, loaded only by the sign-up form,
// and the wasm (gated by `cargo xtask package`) are printed separately.
import { readFileSync, rmSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { join } from "node:path";

export const BUDGET_GZIP = 150 * 1024;
const dist = new URL("../dist/", import.meta.url).pathname;
const manifestPath = join(dist, ".vite", "manifest.json");
const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
rmSync(join(dist, ".vite"), { recursive: true, force: true });

const gz = (file) => gzipSync(readFileSync(join(dist, file)), { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

function collect(key, seen) {
  const chunk = manifest[key];
  if (!chunk || seen.has(chunk.file)) return;
  seen.add(chunk.file);
  for (const css of chunk.css ?? []) seen.add(css);
  for (const imported of chunk.imports ?? []) collect(imported, seen);
}

const entry = Object.keys(manifest).find((k) => manifest[k].isEntry);
const initial = new Set();
collect(entry, initial);
const all = new Set();
for (const chunk of Object.values(manifest)) {
  all.add(chunk.file);
  for (const css of chunk.css ?? []) all.add(css);
}
const codeOnly = (f) => /\.(js|css)$/u.test(f);
const initialFiles = [...initial].filter(codeOnly);
const lazyFiles = [...all].filter((f) => codeOnly(f) && !initial.has(f));
const sum = (files) => files.reduce((n, f) => n + gz(f), 0);
const first = sum(initialFiles);
const lazy = sum(lazyFiles);
const wasm = [...all].filter((f) => f.endsWith(".wasm"));

for (const f of initialFiles) console.log(`  first screen  ${f.padEnd(44)} ${kb(gz(f))} gzip`);
for (const f of lazyFiles) console.log(`  on demand     ${f.padEnd(44)} ${kb(gz(f))} gzip`);
for (const f of wasm) console.log(`  wasm          ${f.padEnd(44)} ${kb(statSync(join(dist, f)).size)} raw (gated by cargo xtask package)`);
console.log(
  `web app size: ${kb(first)} gzip JS+CSS for the first screen (budget ${kb(BUDGET_GZIP)}); ` +
    `${kb(lazy)} gzip loaded on demand (password dictionaries of the sign-up form)`,
);
if (first > BUDGET_GZIP) {
  console.error(`the web app's first-screen JS+CSS grew to ${kb(first)} gzip, over the budget of ${kb(BUDGET_GZIP)}`);
  process.exit(1);
}
