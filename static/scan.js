/* The handheld scan box: every Enter-terminated scan is queued on the device (localStorage),
   sent one at a time in order with its own idempotency key, and replayed after a network drop.
   A burst from a wedge scanner is never dropped nor double counted. */
(function () {
  "use strict";
  var QKEY = "dockhand.scanQueue.v1";
  var sending = false, retryTimer = null;

  function load() { try { return JSON.parse(localStorage.getItem(QKEY) || "[]"); } catch (e) { return []; } }
  function save(q) { try { localStorage.setItem(QKEY, JSON.stringify(q)); } catch (e) { /* private mode: memory only */ } }
  function newKey() {
    var a = new Uint8Array(16);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return "scan-" + Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function form() { return document.getElementById("scan-form"); }
  function status(q, offline) {
    var el = document.getElementById("queue-status");
    if (!el) { return; }
    if (!q.length) { el.hidden = true; el.textContent = ""; return; }
    el.hidden = false;
    el.textContent = (offline ? "Offline: " : "Sending: ") + q.length + " scan" + (q.length > 1 ? "s" : "") + " queued";
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
  function pump() {
    if (sending) { return; }
    var q = load();
    status(q, false);
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
        if (resp.status === 502 || resp.status === 503 || resp.status === 504) { throw new Error("unavailable"); }
        return resp.text().then(function (html) {
          var rest = load();
          if (rest.length && rest[0].key === item.key) { rest.shift(); save(rest); }
          apply(resp, html);
        });
      })
      .then(function () { sending = false; pump(); })
      .catch(function () {
        sending = false; status(load(), true);
        clearTimeout(retryTimer); retryTimer = setTimeout(pump, 2000);
      });
  }
  function enqueue(code) {
    code = (code || "").replace(/[\r\n]+$/, "");
    if (!code.trim()) { return; }
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
  window.addEventListener("online", pump);
  document.addEventListener("DOMContentLoaded", function () { pump(); setupCamera(); });

  function setupCamera() {
    var btn = document.getElementById("camera-btn");
    if (!btn || !("BarcodeDetector" in window) || !navigator.mediaDevices) { return; }
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
