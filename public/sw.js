// The console's service worker: when the network drops, a console page opened before is served
// from the last copy that loaded, with its scripts and styles, so the agent keeps the console
// (its live link reconnects by itself when the network returns). It never answers for the API,
// the live link, attachments or the widget, and signing out forgets every copy.
const CACHE = "kefu-console-v1";
const PAGES = ["/inbox", "/history", "/leave-messages", "/reports", "/canned"];

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((key) => key !== CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname === "/api/logout") {
    event.respondWith(caches.delete(CACHE).then(() => fetch(request)));
    return;
  }
  if (request.method !== "GET") return;
  const page = request.mode === "navigate" && (PAGES.includes(url.pathname) || url.pathname.startsWith("/admin/"));
  const asset = url.pathname.startsWith("/pkg/") || /^\/(favicon\.svg|icon-[\w-]+\.png|manifest\.webmanifest)$/.test(url.pathname);
  if (!page && !asset) return;
  // Network first; a good answer replaces the copy, a failed request falls back to it.
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok && !response.redirected) {
          const copy = response.clone();
          event.waitUntil(caches.open(CACHE).then((cache) => cache.put(page ? url.pathname : request, copy)));
        }
        return response;
      })
      .catch(() =>
        caches
          .open(CACHE)
          .then((cache) => cache.match(page ? url.pathname : request))
          .then((copy) => copy ?? Response.error()),
      ),
  );
});
