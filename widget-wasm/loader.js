// Kefu widget loader: draws the launcher in a Shadow DOM at once, then loads the wasm chat panel
// when the browser is idle or on the first click, whichever comes first. Also the host page's
// API (window.Kefu) and page-view tracking for single-page apps.
// The build (scripts/build-widget.sh) replaces the __KEFU_*__ names with content-hashed files.
(() => {
  const script = document.currentScript;
  if (!script || window.Kefu) return;
  const dir = script.src.replace(/[^/]*$/, "");
  const data = script.dataset;
  const host = document.createElement("kefu-widget");
  host.style.cssText = "all:initial;position:fixed;z-index:2147483647;right:20px;bottom:20px;display:block";
  const root = host.attachShadow({ mode: "open" });
  const style = document.createElement("link");
  style.rel = "stylesheet";
  style.href = dir + "__KEFU_CSS__";
  const launcher = document.createElement("button");
  launcher.className = "launcher";
  launcher.type = "button";
  launcher.setAttribute("aria-label", "Chat");
  // A speech bubble as inline SVG (an emoji shows as an empty box without an emoji font), made
  // as elements: pages that enforce Trusted Types refuse innerHTML.
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  const bubble = document.createElementNS(svg.namespaceURI, "path");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  bubble.setAttribute("d", "M4.6 15.8 3.5 20.5l5.6-1A8.5 8.5 0 1 0 4.6 15.8z");
  svg.append(bubble);
  launcher.append(svg);
  root.append(style, launcher);
  let widget, loading;
  const load = () => loading || (loading = import(dir + "__KEFU_GLUE__")
    .then((m) => m.default({ module_or_path: dir + "__KEFU_WASM__" }).then(() => {
      return (widget = m.start(root, { site: data.site || "", base: new URL(script.src).origin, transport: data.transport, lang: data.lang }));
    }))
    .catch((e) => console.error("kefu widget", e)));
  const firstClick = () => load().then(() => launcher.click());
  launcher.addEventListener("click", firstClick, { once: true });
  const ready = () => document.body.appendChild(host);
  document.body ? ready() : addEventListener("DOMContentLoaded", ready);
  (window.requestIdleCallback || setTimeout)(() => load().then(() => launcher.removeEventListener("click", firstClick)), { timeout: 3000 });
  const call = (name) => (arg) => load().then((w) => w && w(name, arg));
  window.Kefu = { open: call("open"), close: call("close"), identify: call("identify") };
  const navigated = () => widget && widget("page_view");
  for (const name of ["pushState", "replaceState"]) {
    const original = history[name];
    history[name] = function () {
      const result = original.apply(this, arguments);
      navigated();
      return result;
    };
  }
  addEventListener("popstate", navigated);
  addEventListener("hashchange", navigated);
})();
