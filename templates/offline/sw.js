/* Dockhand's service worker (app/web/offline.py), version {{ version }}: it keeps the handheld scan
   screen's shell with its script, styles and icons, so that a reload with no network shows the scan
   screen instead of the browser's error page. It keeps nothing else: a POST, a page of data, an
   answer from the API go to the network, as if there were no worker. */
"use strict";
var PREFIX = "dockhand-shell-", CACHE = PREFIX + {{ version|tojson }};
var SHELL = {{ shell|tojson }}, URLS = {{ urls|tojson }};

self.addEventListener("install", function (ev) {
  ev.waitUntil(caches.open(CACHE).then(function (cache) {
    return cache.addAll(URLS.map(function (url) { return new Request(url, { cache: "reload", credentials: "omit" }); }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (ev) {
  ev.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf(PREFIX) === 0 && k !== CACHE; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

// The scan screen (and the start page, where the installed app opens) when the network fails.
function scanScreen(path) { return path === "/" || path === "/receive" || path.indexOf("/receive/") === 0; }

self.addEventListener("fetch", function (ev) {
  var req = ev.request;
  if (req.method !== "GET") { return; }
  var url = new URL(req.url);
  if (url.origin !== self.location.origin) { return; }
  if (req.mode === "navigate") {
    if (!scanScreen(url.pathname)) { return; }
    // Always the network first: the page (with its data) is never stored, only the shell stands in.
    ev.respondWith(fetch(req).catch(function () {
      return caches.match(SHELL, { cacheName: CACHE }).then(function (hit) { return hit || Response.error(); });
    }));
    return;
  }
  if (URLS.indexOf(url.pathname) >= 0 && !url.search) {
    ev.respondWith(caches.match(url.pathname, { cacheName: CACHE }).then(function (hit) { return hit || fetch(req); }));
  }
});
