// CRRT's only script: enhancement, never required. Pages and forms work
// without it.
"use strict";

// Forms that undo work ask first.
document.addEventListener("submit", (event) => {
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) event.preventDefault();
});

// Hunts that are queued or running show their progress live, from the
// same API the page was built from; the page reloads when one ends.
function watchHunts() {
  const rows = document.querySelectorAll("tr[data-hunt]");
  const live = [...rows].filter((r) => ["queued", "running"].includes(r.dataset.status));
  if (live.length === 0) return;
  const size = (n) =>
    n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1048576).toFixed(1)} MiB`;
  const tick = async () => {
    let ended = false;
    for (const row of live) {
      try {
        const response = await fetch(`/api/v1/hunts/${row.dataset.hunt}`, { credentials: "same-origin" });
        if (!response.ok) continue;
        const hunt = await response.json();
        if (hunt.status !== row.dataset.status) ended = ended || !["queued", "running"].includes(hunt.status);
        row.dataset.status = hunt.status;
        const findings = row.querySelector('[data-field="n_findings"]');
        if (findings) findings.textContent = hunt.n_findings;
        const progress = row.querySelector('[data-field="progress"]');
        if (progress) {
          const percent = hunt.bytes_total > 0 ? Math.floor((hunt.bytes_done * 100) / hunt.bytes_total) : null;
          progress.textContent = `${percent === null ? "" : percent + "% · "}${hunt.records_done} events, ${size(hunt.bytes_done)} of ${size(hunt.bytes_total)}`;
        }
      } catch (_) {
        // The next tick tries again; the page itself stays correct.
      }
    }
    if (ended) window.location.reload();
    else window.setTimeout(tick, 2000);
  };
  window.setTimeout(tick, 2000);
}
document.addEventListener("DOMContentLoaded", watchHunts);

// Status boards (the website watch) reload themselves, unless someone is
// filling in a form on the page.
function refreshBoards() {
  const board = document.querySelector("[data-refresh]");
  if (!board) return;
  const seconds = Number(board.dataset.refresh) || 30;
  window.setInterval(() => {
    const typing = [...document.querySelectorAll("form input:not([type=hidden]):not([type=checkbox])")].some((input) => input.value);
    if (!typing && document.visibilityState === "visible") window.location.reload();
  }, seconds * 1000);
}
document.addEventListener("DOMContentLoaded", refreshBoards);
