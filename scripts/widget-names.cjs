// Gives the widget's wasm imports and exports short names in the JS glue too, following the
// mapping `wasm-opt --minify-imports-and-exports-and-modules` printed (every import then comes
// from one module, "a"). wasm-bindgen's names carry 16 hex digits of hash each, in both files,
// which no compressor can shrink: about 3 KB of the size budget.
// Usage: node scripts/widget-names.cjs GLUE.js MAPPING.json  (rewrites GLUE.js in place)
const fs = require("fs");
const [gluePath, mapPath] = process.argv.slice(2);
const map = JSON.parse(fs.readFileSync(mapPath, "utf8"));
let glue = fs.readFileSync(gluePath, "utf8");
const escape = (text) => text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
const word = (name) => new RegExp(`(?<![\\w$])${escape(name)}(?![\\w$])`, "g");

// The object the glue hands to WebAssembly.instantiate: { "module": importN, … }.
const returned = /return \{\s*__proto__: null,((?:\s*"[^"]+": import\d+,)+)\s*\};/;
const found = glue.match(returned);
if (!found) throw new Error("cannot find the glue's imports object");
const vars = new Map([...found[1].matchAll(/"([^"]+)": (import\d+)/g)].map((m) => [m[1], m[2]]));
const main = [...vars.keys()].find((module) => !module.includes("/snippets/"));

// The glue's own imports are renamed where they are defined; the inline JS snippets' functions
// (module namespaces, whose names cannot change) are added under their short names.
const added = [];
for (const [module, name, short] of map.imports) {
  if (!vars.has(module)) throw new Error(`the glue does not provide module ${module}`);
  if (module === main) {
    if (!word(name).test(glue)) throw new Error(`import ${name} is not in the glue`);
    glue = glue.replace(word(name), JSON.stringify(short));
  } else {
    added.push(`${JSON.stringify(short)}: ${vars.get(module)}.${name}`);
  }
}
glue = glue.replace(
  returned,
  `return { __proto__: null, a: Object.assign(${vars.get(main)}, { ${added.join(", ")} }) };`,
);
for (const [name, short] of map.exports) {
  glue = glue.replace(new RegExp(`\\bwasm\\.${escape(name)}(?![\\w$])`, "g"), `wasm[${JSON.stringify(short)}]`);
}
// An export the mapping does not know would be a broken call.
const left = glue.match(/\bwasm\.\w+/);
if (left) throw new Error(`export not renamed: ${left[0]}`);
fs.writeFileSync(gluePath, glue);
