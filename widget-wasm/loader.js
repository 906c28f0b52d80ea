// Kefu widget loader: draws the launcher in a Shadow DOM at once, then loads the wasm chat panel
// when the browser is idle or on the first click, whichever comes first.
(() => {
  const script = document.currentScript;
  if (!script || window.__kefu) return;
  const base = script.src.replace(/[^/]*$/, "");
  const site = script.dataset.site || "";
  const host = document.createElement("kefu-widget");
  host.style.cssText = "all:initial;position:fixed;z-index:2147483647;right:20px;bottom:20px;display:block";
  const root = host.attachShadow({ mode: "open" });
  const style = document.createElement("link");
  style.rel = "stylesheet";
  style.href = base + "widget.css";
  const launcher = document.createElement("button");
  launcher.className = "launcher";
  launcher.type = "button";
  launcher.setAttribute("aria-label", "Chat");
  launcher.textContent = "\u{1F4AC}";
  root.append(style, launcher);
  let loading;
  const load = () => loading || (loading = import(base + "kefu_widget.js")
    .then((m) => m.default({ module_or_path: base + "kefu_widget_bg.wasm" }).then(() => m.start(root, site)))
    .catch((e) => console.error("kefu widget", e)));
  const firstClick = () => load().then(() => launcher.click());
  launcher.addEventListener("click", firstClick, { once: true });
  const ready = () => document.body.appendChild(host);
  document.body ? ready() : addEventListener("DOMContentLoaded", ready);
  (window.requestIdleCallback || setTimeout)(() => load().then(() => launcher.removeEventListener("click", firstClick)), { timeout: 3000 });
  window.__kefu = { open: () => load().then(() => root.querySelector(".panel")?.removeAttribute("hidden")) };
})();
