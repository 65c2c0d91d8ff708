// Follows the job shown on the demo page through its progress stream (Server-Sent Events,
// taskito.contrib.sse): each event is {"status": ..., "progress": 0..100, "partial": ...},
// the current state first, then every change. A static file, since the page's Content
// Security Policy blocks inline scripts.
"use strict";

const TERMINAL = new Set(["complete", "failed", "dead", "cancelled"]);

function followJob(panel) {
  const bar = document.getElementById("progress");
  const percent = document.getElementById("percent");
  const status = document.getElementById("status");
  const partial = document.getElementById("partial");
  if (TERMINAL.has(status.textContent.trim())) {
    return; // finished before the page loaded: nothing to follow
  }
  const source = new EventSource(panel.dataset.progressUrl);
  source.onmessage = (event) => {
    const state = JSON.parse(event.data);
    bar.value = state.progress;
    bar.textContent = `${state.progress}%`;
    percent.textContent = `${state.progress}%`;
    status.textContent = state.status;
    if (state.partial && state.partial.tiles) {
      // the task's partial result (the page asked for it with ?partial=1)
      partial.textContent = `${state.partial.tiles_done} of ${state.partial.tiles} tiles`;
    }
    if (TERMINAL.has(state.status)) {
      // The server ends the stream after a terminal status; closing it here keeps
      // EventSource from reconnecting.
      source.close();
      reloadQueue(panel.dataset.queueUrl);
    }
  };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      // Refused (an expired token, say): EventSource gives up; reload for a new token.
      status.textContent += " (live updates stopped: reload the page)";
    }
  };
}

async function reloadQueue(url) {
  const response = await fetch(url, { headers: { Accept: "text/html" } });
  if (response.ok) {
    document.getElementById("queue").innerHTML = await response.text();
  }
}

const panel = document.getElementById("job");
if (panel) {
  followJob(panel);
}
