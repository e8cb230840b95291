/* Dockhand page behaviour: feedback by colour, sound and vibration; the scan box keeps focus. */
(function () {
  "use strict";
  var audio = null;
  function beep(ok) {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var o = audio.createOscillator(), g = audio.createGain();
      o.frequency.value = ok ? 880 : 220; o.type = ok ? "sine" : "square";
      g.gain.value = 0.08; o.connect(g); g.connect(audio.destination);
      o.start(); o.stop(audio.currentTime + (ok ? 0.08 : 0.3));
    } catch (e) { /* no audio: colour and vibration still tell */ }
  }
  function buzz(ok) { if (navigator.vibrate) { navigator.vibrate(ok ? 40 : [120, 60, 120]); } }
  window.dockhandFeedback = function (ok) { beep(ok); buzz(ok); document.body.dataset.feedback = ok ? "ok" : "error"; };
  document.addEventListener("dockhand:ok", function () { window.dockhandFeedback(true); });
  document.addEventListener("dockhand:error", function () { window.dockhandFeedback(false); });
  function focusScan() {
    var box = document.getElementById("scan");
    if (box && document.activeElement !== box && !document.querySelector("dialog[open]")) {
      var a = document.activeElement;
      if (!a || a === document.body || a.closest("[data-refocus-scan]")) { box.focus({ preventScroll: true }); }
    }
  }
  document.addEventListener("htmx:afterSettle", focusScan);
  // A successful action clears the last refusal; a refusal stays until the next success or a tap.
  document.addEventListener("htmx:afterRequest", function (ev) {
    var xhr = ev.detail.xhr, box = document.getElementById("messages");
    if (box && xhr && xhr.status < 400 && !xhr.getResponseHeader("HX-Retarget") && !xhr.getResponseHeader("X-Keep-Messages")) { box.innerHTML = ""; }
  });
  document.addEventListener("click", function (ev) {
    var msg = ev.target.closest && ev.target.closest("#messages .msg");
    if (msg) { msg.remove(); }
  });
  document.addEventListener("DOMContentLoaded", focusScan);

  // An action with an idempotency key is sent again, with the same key, until the server has
  // answered it. A lost answer (a 5xx, a timeout, the network) says nothing about whether it was
  // saved; the server answers a repeat of a saved action with its first result, so it is saved
  // once. A 500 is tried a few times (its answer may be what was lost), then shown as an error.
  var PAUSES = [1000, 2000, 4000, 8000, 15000], attempts = new WeakMap(), targets = new WeakMap();
  // Where each form's answer goes, as it was sent: an error answer retargets itself to #messages
  // (HX-Retarget), and the resent action's answer must go where the first would have gone.
  document.addEventListener("htmx:beforeRequest", function (ev) {
    if (!targets.has(ev.detail.elt)) { targets.set(ev.detail.elt, ev.detail.target); }
  });
  // The one resend policy, scan.js's queue included: the pause before try n+1, and how often a 500 is tried.
  window.dockhandResend = {
    pause: function (n) { return PAUSES[Math.min(n - 1, PAUSES.length - 1)]; },
    triesAfterA500: 4
  };
  function pending(text) {
    var box = document.getElementById("messages");
    if (box) { box.innerHTML = ""; var p = document.createElement("p"); p.className = "msg msg-pending"; p.textContent = text; box.appendChild(p); }
  }
  function serverSaid(xhr) {
    try { return JSON.parse(xhr.getResponseHeader("HX-Trigger"))["dockhand:error"].message || ""; } catch (e) { return ""; }
  }
  function resendLater(ev) {
    var d = ev.detail, cfg = d.requestConfig, p = cfg && cfg.parameters;
    if (!cfg || cfg.verb === "get" || !p || !(p.key || p.idempotency_key)) { return; }
    var status = d.xhr ? d.xhr.status : 0, tries = (attempts.get(d.elt) || 0) + 1;
    if (status === 500 && tries > window.dockhandResend.triesAfterA500) {
      attempts.delete(d.elt);
      pending("Dockhand hit an error and could not confirm this. Check whether it was saved before you do it again.");
      window.dockhandFeedback(false);
      return;
    }
    attempts.set(d.elt, tries);
    var pause = window.dockhandResend.pause(tries), values = {};
    (cfg.formData || new FormData()).forEach(function (v, k) { (values[k] = values[k] || []).push(v); });
    var again = "checking again in " + pause / 1000 + " s (try " + (tries + 1) + ").";
    var said = serverSaid(d.xhr);  // Dockhand's own 503 says what is out of reach, with its reference
    pending(said ? said + " Still " + again : "Not confirmed yet: " + again + " It is saved once.");
    document.body.dataset.resending = "yes";
    setTimeout(function () {
      if (!document.body.contains(d.elt)) { return; }
      htmx.ajax(cfg.verb, cfg.path, { source: d.elt, target: targets.get(d.elt) || d.target, values: values });
    }, pause);
  }
  document.addEventListener("htmx:responseError", resendLater);
  document.addEventListener("htmx:sendError", resendLater);
  document.addEventListener("htmx:timeout", resendLater);
  document.addEventListener("htmx:afterRequest", function (ev) {
    var xhr = ev.detail.xhr;
    if (xhr && xhr.status > 0 && xhr.status < 500) { attempts.delete(ev.detail.elt); delete document.body.dataset.resending; }
  });
  // "Select all" ticks every row on the page for a bulk decision (the desk's queues).
  document.addEventListener("change", function (e) {
    if (!e.target.matches("[data-select-all]")) return;
    document.querySelectorAll("#queue input[data-select]").forEach(function (box) { box.checked = e.target.checked; });
  });
  // Scans still queued on this device (scan.js) were made at the warehouse on screen: switching
  // warehouse waits until they are saved, so that none is received at the other one.
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (!f.matches || !f.matches("[data-place-switch]")) { return; }
    var waiting = 0;
    try { waiting = ((JSON.parse(localStorage.getItem("dockhand.scanQueue.v2." + f.dataset.user) || "null") || {}).items || []).length; } catch (e) { waiting = 0; }
    if (!waiting) { return; }
    ev.preventDefault();
    var box = document.getElementById("messages"), p = document.createElement("p");
    p.className = "msg msg-error";
    p.textContent = waiting + " scan" + (waiting > 1 ? "s are" : " is") + " still waiting to be sent from this device: " +
      "switch warehouse once " + (waiting > 1 ? "they are" : "it is") + " saved. Nothing was changed.";
    if (box) { box.innerHTML = ""; box.appendChild(p); }
    window.dockhandFeedback(false);
  });
  // Guided inspection (receiving/_unit.html): as the checklist is answered, the category's grading
  // rules (each item's data-rules: answer -> grade, skip, what it takes off) hide the items skipped,
  // show what set the grade and each deduction, and hide the grade picker once an answer sets it.
  // The server applies the same rules (app/inspection/grading.py) whether this runs or not.
  function fill(text, values) { return text.replace(/\{(\w+)\}/g, function (m, k) { return k in values ? values[k] : m; }); }
  function guideInspection(form) {
    var box = form.querySelector("#guide");
    if (!box) { return; }
    var grade = null, setBy = null, skipping = false, offs = [];
    form.querySelectorAll("fieldset[data-key]").forEach(function (fs) {
      fs.hidden = skipping;
      var picked = fs.querySelector("input[type=radio]:checked");
      if (skipping || !picked) { return; }
      var rule;
      try { rule = JSON.parse(fs.dataset.rules || "{}")[picked.value]; } catch (e) { rule = null; }
      if (!rule) { return; }
      var legend = fs.querySelector("legend"), said = fill(box.dataset.said, { item: legend ? legend.textContent.trim() : "", answer: box.dataset[picked.value] || picked.value });
      if (rule.grade && !grade) { grade = rule.grade; setBy = said; }
      if (rule.skip) { skipping = true; }
      if (rule.missing) { offs.push(fill(box.dataset.missing, { part: rule.missing, off: rule.off })); }
      else if (rule.off) { offs.push(fill(box.dataset.off, { answer: said, off: rule.off })); }
    });
    var list = box.querySelector(".guide-list");
    list.textContent = "";
    function line(cls, text, strong) {
      var li = document.createElement("li"), el = strong ? document.createElement("strong") : li;
      li.className = cls; el.textContent = text; if (strong) { li.appendChild(el); } list.appendChild(li);
    }
    if (grade) { line("guide-grade", fill(box.dataset.gradeSet, { grade: grade, answer: setBy }), true); }
    if (skipping) { line("guide-skip", box.dataset.skipped); }
    offs.forEach(function (t) { line("guide-off", t); });
    box.hidden = !(grade || skipping || offs.length);
    var picker = form.querySelector(".grades");
    if (picker) { picker.hidden = !!grade; }
  }
  document.addEventListener("change", function (ev) {
    var form = ev.target.closest && ev.target.closest("form[data-guided]");
    if (form && ev.target.type === "radio") { guideInspection(form); }
  });
  // The service worker (app/web/offline.py) keeps the scan screen's shell for a reload offline.
  window.addEventListener("load", function () {
    var sw = document.body.dataset.serviceWorker;
    if (sw && "serviceWorker" in navigator) { navigator.serviceWorker.register(sw, { scope: "/" }).catch(function () { /* http: no worker */ }); }
  });
  // The label page prints itself when it was opened to print (data-autoprint on its preview).
  window.addEventListener("load", function () {
    if (document.querySelector("[data-autoprint]")) { window.setTimeout(function () { window.print(); }, 100); }
  });
})();
