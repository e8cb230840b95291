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
  // "Select all" ticks every row on the page for a bulk decision (the desk's queues).
  document.addEventListener("change", function (e) {
    if (!e.target.matches("[data-select-all]")) return;
    document.querySelectorAll("#queue input[data-select]").forEach(function (box) { box.checked = e.target.checked; });
  });
  // The label page prints itself when it was opened to print (data-autoprint on its preview).
  window.addEventListener("load", function () {
    if (document.querySelector("[data-autoprint]")) { window.setTimeout(function () { window.print(); }, 100); }
  });
})();
