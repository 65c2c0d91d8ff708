/* taskito dashboard: draws the last hour's chart and refreshes the page's numbers.
   A static file (no inline script), so the page works under a Content Security Policy. */
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var WIDTH = 900, HEIGHT = 180, LEFT = 34, BOTTOM = 18, TOP = 8;

  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function draw(root) {
    var holder = root.querySelector("[data-taskito-chart]");
    if (!holder) { return; }
    var source = document.getElementById(holder.getAttribute("data-taskito-chart"));
    var points = source ? JSON.parse(source.textContent) : [];
    var max = 1;
    points.forEach(function (p) { max = Math.max(max, p.ok + p.failed); });
    var plotW = WIDTH - LEFT - 4, plotH = HEIGHT - TOP - BOTTOM;
    var slot = plotW / Math.max(points.length, 1);
    var svg = el("svg", {viewBox: "0 0 " + WIDTH + " " + HEIGHT, preserveAspectRatio: "none",
                         "class": "taskito-chart-svg"});
    svg.appendChild(el("line", {x1: LEFT, y1: TOP + plotH, x2: WIDTH - 4, y2: TOP + plotH,
                                "class": "axis"}));
    svg.appendChild(el("text", {x: LEFT - 4, y: TOP + 10, "text-anchor": "end",
                                "class": "label"}, String(max)));
    svg.appendChild(el("text", {x: LEFT - 4, y: TOP + plotH, "text-anchor": "end",
                                "class": "label"}, "0"));
    points.forEach(function (p, i) {
      var x = LEFT + i * slot + slot * 0.1, w = Math.max(slot * 0.8, 1);
      var okH = plotH * p.ok / max, badH = plotH * p.failed / max;
      var group = el("g", {"class": "bar", "data-minute": p.t});
      group.appendChild(el("title", {}, p.t + ": " + p.ok + " succeeded, " + p.failed +
                                        " failed"));
      if (p.ok) {
        group.appendChild(el("rect", {x: x, y: TOP + plotH - okH, width: w, height: okH,
                                      "class": "bar-ok"}));
      }
      if (p.failed) {
        group.appendChild(el("rect", {x: x, y: TOP + plotH - okH - badH, width: w,
                                      height: badH, "class": "bar-bad"}));
      }
      svg.appendChild(group);
    });
    if (points.length) {
      svg.appendChild(el("text", {x: LEFT, y: HEIGHT - 4, "class": "label"}, points[0].t));
      svg.appendChild(el("text", {x: WIDTH - 4, y: HEIGHT - 4, "text-anchor": "end",
                                  "class": "label"}, points[points.length - 1].t));
    }
    holder.replaceChildren(svg);
  }

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
        draw(fresh);
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
    if (!root) { return; }
    draw(root);
    schedule(root);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
