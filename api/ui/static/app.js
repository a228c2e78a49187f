// Loop dashboard: relative dates, lease countdowns, live fragments, keyboard shortcuts.
// Vendored, no build step, no dependencies; the pages work without it (reading and forms).
(function () {
  "use strict";

  function ago(ms) {
    var s = Math.round(Math.abs(ms) / 1000), future = ms < 0, out;
    if (s < 60) out = s + " s";
    else if (s < 3600) out = Math.round(s / 60) + " min";
    else if (s < 86400) out = Math.round(s / 3600) + " h";
    else out = Math.round(s / 86400) + " d";
    return future ? "in " + out : out + " ago";
  }

  function dates(root) {
    var now = Date.now();
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var t = Date.parse(el.getAttribute("datetime"));
      if (isNaN(t)) return;
      el.title = el.getAttribute("datetime");
      if (el.hasAttribute("data-countdown")) {
        var left = Math.max(0, Math.round((t - now) / 1000));
        el.textContent = left > 0 ? Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0") + " left" : "expired";
      } else {
        el.textContent = ago(now - t);
      }
    });
  }

  function refresh(el) {
    var every = parseInt(el.getAttribute("data-every") || "5", 10) * 1000;
    setInterval(function () {
      if (document.hidden) return;
      fetch(el.getAttribute("data-refresh"), { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) { if (html !== null) { el.innerHTML = html; dates(el); } })
        .catch(function () {});
    }, every);
  }

  var pendingG = false;
  var goTo = {};
  function keys(e) {
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || e.metaKey || e.ctrlKey || e.altKey) return;
    if (e.key === "/") {
      var q = document.getElementById("q");
      if (q) { e.preventDefault(); q.focus(); }
    } else if (e.key === "g") {
      pendingG = true;
      setTimeout(function () { pendingG = false; }, 1200);
    } else if (pendingG && goTo[e.key]) {
      pendingG = false;
      window.location.href = goTo[e.key];
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("a[data-go]").forEach(function (a) { goTo[a.getAttribute("data-go")] = a.getAttribute("href"); });
    dates(document);
    setInterval(function () { dates(document); }, 1000);
    document.querySelectorAll("[data-refresh]").forEach(refresh);
    document.addEventListener("keydown", keys);
  });
})();
