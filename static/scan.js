/* The handheld scan box: every Enter-terminated scan is queued on the device (localStorage),
   sent one at a time in order with its own idempotency key, and sent again, with the same key,
   until the server has answered it (a lost answer, a 5xx, a network drop): the server answers a
   repeat with its first result, so a burst from a wedge scanner is never dropped nor double
   counted. The queue belongs to the user who scanned: it is sent only under their session, kept
   when they are signed out, and shown (not sent) to anybody else signed in on the device. */
(function () {
  "use strict";
  var PREFIX = "dockhand.scanQueue.v2.", resend = window.dockhandResend;  // dockhand.js, loaded first
  var sending = false, retryTimer = null, failures = 0, signedOut = false;
  // The offline shell (app/web/offline.py, kept by the service worker) has no session: scans made
  // there are queued under the last person signed in on this device and sent by the real scan
  // screen, which the shell reloads into when the connection is back.
  var LAST_USER = "dockhand.lastUser";
  function offlineShell() { return document.body.hasAttribute("data-offline-shell"); }

  function form() { return document.getElementById("scan-form"); }
  function me() { var f = form(); return f && f.dataset.user ? f.dataset.user : null; }
  function read(key) {
    try { var v = JSON.parse(localStorage.getItem(key) || "null"); return v && Array.isArray(v.items) ? v : null; } catch (e) { return null; }
  }
  function load() { var v = me() && read(PREFIX + me()); return v ? v.items : []; }
  function save(q) {
    var f = form();
    if (!me()) { return; }
    try {
      if (q.length) { localStorage.setItem(PREFIX + me(), JSON.stringify({ name: f.dataset.userName, items: q })); }
      else { localStorage.removeItem(PREFIX + me()); }
    } catch (e) { /* private mode: memory only */ }
  }
  function newKey() {
    var a = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return "scan-" + Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  // The words this script shows, in the page's language: the scan box's data-words (receiving/_scanbox.html);
  // "{n}" and "{name}" are filled in here.
  function word(key, fallback, fill) {
    var el = document.getElementById("queue-status"), words = {};
    try { words = JSON.parse((el && el.dataset.words) || "{}"); } catch (e) { words = {}; }
    var text = words[key] || fallback;
    Object.keys(fill || {}).forEach(function (k) { text = text.split("{" + k + "}").join(fill[k]); });
    return text;
  }
  function othersWaiting() {
    var out = [];
    for (var i = 0; i < localStorage.length; i++) {
      var key = localStorage.key(i);
      if (key && key.indexOf(PREFIX) === 0 && key !== PREFIX + me()) {
        var v = read(key);
        if (v && v.items.length) {
          out.push(word(v.items.length > 1 ? "of_many" : "of_one", "{n} scan(s) of {name}",
                        { n: v.items.length, name: v.name || word("another", "another user") }));
        }
      }
    }
    return out;
  }
  function status(q, state, note) {
    var el = document.getElementById("queue-status");
    if (!el) { return; }
    var others = othersWaiting(), parts = [];
    var label = word(state, state);
    if (q.length) { parts.push(label + ": " + word(q.length > 1 ? "queued_many" : "queued_one", "{n} scan(s) queued", { n: q.length }) + (note ? " " + note : "")); }
    if (others.length) { parts.push(others.join(", ") + " " + word("others", "wait on this device; they are sent when that person signs in here again.")); }
    el.hidden = !parts.length;
    el.textContent = parts.join(". ");
    el.dataset.state = q.length ? state : "idle";
  }
  function fire(resp) {
    var trig = resp.headers.get("HX-Trigger");
    if (!trig) { return; }
    try {
      var events = JSON.parse(trig);
      Object.keys(events).forEach(function (name) { htmx.trigger(document.body, name, events[name]); });
    } catch (e) { htmx.trigger(document.body, trig); }
  }
  function navigate(url) {
    var a = document.createElement("a");
    a.setAttribute("hx-get", url); a.setAttribute("hx-target", "#work"); a.setAttribute("hx-push-url", "true");
    a.hidden = true; document.body.appendChild(a); htmx.process(a); htmx.trigger(a, "click");
    setTimeout(function () { a.remove(); }, 0);
  }
  function apply(resp, html) {
    var loc = resp.headers.get("HX-Location");
    if (loc) { navigate(loc); return; }
    var target = document.querySelector(resp.headers.get("HX-Retarget") || "#work");
    var messages = document.getElementById("messages");
    if (resp.ok && messages) { messages.innerHTML = ""; }
    if (target) { htmx.swap(target, html, { swapStyle: "innerHTML" }); }
    fire(resp);
  }
  function later(state) {
    failures += 1;
    var pause = resend.pause(failures);
    status(load(), state, word("again", "(sent again in {s} s; each scan is saved once)", { s: pause / 1000 }));
    clearTimeout(retryTimer); retryTimer = setTimeout(pump, pause);
  }
  function pump() {
    if (offlineShell()) { status(load(), "offline", word("when_back", "(sent when the connection is back)")); return; }
    if (sending || signedOut) { return; }
    var q = load();
    status(q, "sending");
    var f = form();
    if (!q.length || !f) { return; }
    sending = true;
    var item = q[0];
    var body = new URLSearchParams();
    body.set("code", item.code); body.set("key", item.key); body.set("csrf_token", f.elements.csrf_token.value);
    var headers = { "HX-Request": "true", "X-CSRFToken": f.elements.csrf_token.value };
    // The parcel card on screen (which parcel, which return): when the server's parcel is the same,
    // it answers an item scan with only what changed.
    var card = document.getElementById("parcel");
    if (card && document.getElementById("result")) { headers["X-Dockhand-Parcel"] = card.dataset.parcel; }
    fetch(f.dataset.scanUrl, { method: "POST", body: body, credentials: "same-origin", headers: headers })
      .then(function (resp) {
        sending = false;
        if (resp.headers.get("X-Dockhand-Session")) {  // signed out or a stale session: keep every scan
          signedOut = true;
          return resp.text().then(function (html) { apply(resp, html); status(load(), "signed-out"); });
        }
        if (resp.status === 500 && (item.errors = (item.errors || 0) + 1) > resend.triesAfterA500) {
          // Not a lost answer but an error each time: show it and go on with the next scan.
          return resp.text().then(function (html) {
            var rest = load();
            if (rest.length && rest[0].key === item.key) { rest.shift(); save(rest); }
            failures = 0; apply(resp, html); pump();
          });
        }
        if (resp.status >= 500) {
          var rest = load();
          if (rest.length && rest[0].key === item.key) { rest[0].errors = item.errors; save(rest); }
          later("retrying"); return;
        }
        failures = 0;
        return resp.text().then(function (html) {
          var rest = load();
          if (rest.length && rest[0].key === item.key) { rest.shift(); save(rest); }
          apply(resp, html);
          pump();
        });
      })
      .catch(function () { sending = false; later(navigator.onLine === false ? "offline" : "retrying"); });
  }
  function enqueue(code) {
    code = (code || "").replace(/[\r\n]+$/, "");
    if (!code.trim() || !me()) { return; }
    var q = load(); q.push({ code: code, key: newKey() }); save(q); pump();
  }
  window.dockhandScan = enqueue;

  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (f.id !== "scan-form") { return; }
    ev.preventDefault();
    var box = f.elements.code;
    var code = box.value;
    box.value = "";
    box.focus();
    enqueue(code);
  });
  window.addEventListener("online", function () {
    if (offlineShell()) { reachable(); return; }
    failures = 0; pump();
  });
  // The shell goes back to the real scan screen once Dockhand answers (its liveness probe): the
  // browser's "online" is only a hint (a Wi-Fi with no route says online), so it asks every 5 s too.
  var probe = null;
  function reachable() {
    clearTimeout(probe);
    fetch(document.body.dataset.live || "/live", { cache: "no-store", credentials: "omit" })
      .then(function (resp) { if (resp.ok) { window.location.reload(); } else { probe = setTimeout(reachable, 5000); } })
      .catch(function () { probe = setTimeout(reachable, 5000); });
  }
  function whoScans() {
    var f = form();
    if (!f) { return; }
    try {
      if (!offlineShell()) { localStorage.setItem(LAST_USER, JSON.stringify({ id: f.dataset.user, name: f.dataset.userName })); return; }
      var last = JSON.parse(localStorage.getItem(LAST_USER) || "null");
      if (last && last.id) { f.dataset.user = last.id; f.dataset.userName = last.name || ""; return; }
    } catch (e) { /* no storage: nobody to queue for */ }
    var nobody = document.getElementById("offline-nobody");
    if (nobody) { nobody.hidden = false; }
    f.elements.code.disabled = true;
  }
  // Signing out leaves the queue to its owner, but the shell no longer scans in their name.
  document.addEventListener("submit", function (ev) {
    if (ev.target.classList && ev.target.classList.contains("logout")) { try { localStorage.removeItem(LAST_USER); } catch (e) { /* none kept */ } }
  });
  document.addEventListener("DOMContentLoaded", function () {
    whoScans(); pump(); setupScanBox();
    if (offlineShell()) { probe = setTimeout(reachable, 5000); }
  });
  // A boosted link ("Next item", "Inspect now") brings a new scan box with the page it swaps in.
  document.addEventListener("htmx:afterSettle", setupScanBox);
  function setupScanBox() { setupCamera(); setupKeyboard(); }

  // The soft keyboard: shut by default (inputmode="none"), so that a wedge scanner's keystrokes do
  // not open it each time focus comes back to the scan box; the keyboard button opens it for a code
  // typed by hand. The choice stays on the device.
  var KEYBOARD = "dockhand.softKeyboard";
  function keyboardOn(on) {
    var box = document.getElementById("scan"), btn = document.getElementById("keyboard-btn");
    if (!box || !btn) { return; }
    box.setAttribute("inputmode", on ? "text" : "none");
    btn.setAttribute("aria-pressed", on ? "true" : "false");
    btn.setAttribute("aria-label", on ? word("hide_keyboard", "Hide the keyboard") : word("show_keyboard", "Type with the keyboard"));
  }
  function setupKeyboard() {
    try { keyboardOn(localStorage.getItem(KEYBOARD) === "on"); } catch (e) { keyboardOn(false); }
  }
  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("#keyboard-btn"), box = document.getElementById("scan");
    if (!btn || !box) { return; }
    var on = btn.getAttribute("aria-pressed") !== "true";
    try { localStorage.setItem(KEYBOARD, on ? "on" : "off"); } catch (e) { /* private mode: this page only */ }
    box.blur(); keyboardOn(on); box.focus();  // the keyboard follows inputmode when focus comes back
  });

  // The camera button shows only where a decoder exists: the browser's own BarcodeDetector, or
  // the vendored ZXing polyfill (static/vendor/barcode-detector), loaded only where it is missing.
  function withDetector(done) {
    var btn = document.getElementById("camera-btn");
    if (!btn || !navigator.mediaDevices) { return; }
    if ("BarcodeDetector" in window) { done(btn); return; }
    if (!btn.dataset.polyfill || document.querySelector("script[data-barcode-polyfill]")) { return; }
    var s = document.createElement("script");
    s.src = btn.dataset.polyfill; s.dataset.barcodePolyfill = "";
    s.onload = function () {
      var api = window.BarcodeDetectionAPI, wasm = btn.dataset.wasm;
      if (api && api.prepareZXingModule && wasm) {
        api.prepareZXingModule({ overrides: { locateFile: function (path, prefix) { return /\.wasm$/.test(path) ? wasm : prefix + path; } } });
      }
      if ("BarcodeDetector" in window) { done(btn); }
    };
    document.head.appendChild(s);
  }
  function setupCamera() { withDetector(showCamera); }
  function showCamera(btn) {
    if (btn.dataset.ready) { return; }
    btn.dataset.ready = "yes";
    btn.hidden = false;
    btn.addEventListener("click", function () {
      var dlg = document.getElementById("camera-dialog"), video = document.getElementById("camera-video");
      var detector = new window.BarcodeDetector();
      navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
        video.srcObject = stream; video.play(); dlg.showModal();
        var stop = function () { stream.getTracks().forEach(function (t) { t.stop(); }); if (dlg.open) { dlg.close(); } };
        dlg.addEventListener("close", stop, { once: true });
        (function tick() {
          if (!dlg.open) { return; }
          detector.detect(video).then(function (codes) {
            if (codes.length) { stop(); enqueue(codes[0].rawValue); } else { requestAnimationFrame(tick); }
          }).catch(function () { requestAnimationFrame(tick); });
        })();
      }).catch(function () { window.dockhandFeedback && window.dockhandFeedback(false); });
    });
  }
})();
