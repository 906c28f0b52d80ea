#!/usr/bin/env bash
# Prints what a browser downloads to open the console the first time, as sent (brotli, the
# smallest of the precompressed copies) and gzipped, against the 300 KB gzip budget (issue 21):
#   - every page: the main wasm, its JS glue, the split loader and the stylesheet;
#   - the sign-in page and the inbox (both in the main wasm) add nothing; each other page adds
#     its lazy chunk and the shared chunks it needs, as listed in the split manifest that
#     cargo-leptos writes (`--split`).
# Reports, does not fail: the budget is a target.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG=${PKG:-target/site/pkg} BUDGET=307200 PKG="$PKG" BUDGET="$BUDGET" node - <<'EOF'
const fs = require("fs");
const path = require("path");
const pkg = process.env.PKG;
const budget = Number(process.env.BUDGET);
const files = fs.readdirSync(pkg);
const one = (re, what) => {
  const found = files.find((f) => re.test(f));
  if (!found) {
    console.error(`console-assets: no ${what} in ${pkg} (built with hash-files and --split?)`);
    process.exit(1);
  }
  return found;
};
const size = (f) => fs.statSync(path.join(pkg, f)).size;
const sent = (f) => ({ raw: size(f), br: size(`${f}.br`), gz: size(`${f}.gz`) });
const add = (a, b) => ({ raw: a.raw + b.raw, br: a.br + b.br, gz: a.gz + b.gz });
const zero = { raw: 0, br: 0, gz: 0 };

const common = [
  one(/^kefu\.[\w-]+\.wasm$/, "kefu.*.wasm"),
  one(/^kefu\.[\w-]+\.js$/, "kefu.*.js"),
  one(/^__wasm_split\.[\w-]+\.js$/, "__wasm_split.*.js"),
  one(/^kefu\.[\w-]+\.css$/, "kefu.*.css"),
];
for (const f of common) {
  const s = sent(f);
  console.log(`console-assets: ${f.padEnd(44)} ${String(s.raw).padStart(9)} B raw ${String(s.br).padStart(8)} B br ${String(s.gz).padStart(8)} B gzip`);
}
const base = common.map(sent).reduce(add, zero);
const manifest = JSON.parse(fs.readFileSync(path.join(pkg, one(/^__wasm_split_manifest\.[\w-]+\.json$/, "the split manifest")), "utf8"));
const line = (page, s) => {
  const verdict = s.gz <= budget ? "within" : "OVER";
  console.log(`console-assets: first load of ${page.padEnd(26)} ${String(s.br).padStart(8)} B brotli ${String(s.gz).padStart(8)} B gzip  (budget ${budget} B gzip: ${verdict})`);
};
line("sign-in and inbox", base);
for (const [split, chunks] of Object.entries(manifest).sort()) {
  const page = split.replace(/^__/, "").replace(/_route_view_\d+$/, "").replace(/_/g, " ") + " page";
  const own = files.find((f) => f.startsWith(`split_${split}.`) && f.endsWith(".wasm"));
  const needed = [own, ...chunks.map((c) => `${c}.wasm`)].filter(Boolean);
  line(page, needed.map(sent).reduce(add, base));
}
EOF
