/* taskito dashboard: refreshes the page's numbers and charts (inline SVG drawn by the
   server) every few seconds. A static file (no inline script), so the page works under a
   Content Security Policy. */
(function () {
  "use strict";

  function schedule(root) {
    var seconds = parseInt(root.getAttribute("data-refresh"), 10);
    if (seconds > 0) { window.setTimeout(refresh, seconds * 1000); }
  }

  function refresh() {
    var current = document.getElementById("taskito-dashboard");
    if (!current) { return; }
    if (document.hidden) { schedule(current); return; }
    fetch(window.location.href, {credentials: "same-origin",
                                 headers: {"X-Requested-With": "XMLHttpRequest"}})
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("taskito-dashboard");
        if (!fresh) { throw new Error("not a dashboard page (logged out?)"); }
        fresh = document.importNode(fresh, true);
        current.replaceWith(fresh);
        schedule(fresh);
      })
      .catch(function () {
        var note = current.querySelector(".taskito-stale-note");
        if (note) { note.hidden = false; }
        schedule(current);
      });
  }

  function start() {
    var root = document.getElementById("taskito-dashboard");
    if (root) { schedule(root); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
