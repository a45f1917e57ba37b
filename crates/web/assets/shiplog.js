// shiplog dashboard: progressive enhancement only; every page works without this file.
// 1. Times are shown in the viewer's time zone, named (UTC stays in the tooltip).
// 2. The deployments list adds and updates rows as the server's live feed sends them, each in
//    its place by its own time (newest first, ties by id, as the server orders the list).
"use strict";

function localizeTimes(root) {
  for (const element of root.querySelectorAll("time[datetime]")) {
    const at = new Date(element.getAttribute("datetime"));
    if (!Number.isNaN(at.getTime())) {
      element.textContent = at.toLocaleString(undefined, {
        year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
        timeZoneName: "short",
      });
    }
  }
}

function followLiveFeed(table) {
  const body = table.tBodies[0];
  const source = new EventSource(table.dataset.live);
  source.addEventListener("deployment", (message) => {
    const template = document.createElement("template");
    template.innerHTML = message.data.trim();
    const row = template.content.firstElementChild;
    if (!row || !row.id) {
      return;
    }
    localizeTimes(row);
    const existing = document.getElementById(row.id);
    if (existing) {
      existing.remove();
    }
    const after = (other) => {
      const [a, b] = [BigInt(row.dataset.at || "0"), BigInt(other.dataset.at || "0")];
      return a !== b ? a > b : row.id > other.id;
    };
    // The feed sends only rows of the page's filters' first page, so each belongs in view.
    body.insertBefore(row, Array.from(body.rows).find(after) ?? null);
    row.classList.add("arrived");
  });
}

// 3. A secret shown once has a copy button; where the clipboard is not allowed, the secret is
//    selected instead, for the person to copy.
function copyButtons(root) {
  for (const button of root.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      if (!source) {
        return;
      }
      try {
        await navigator.clipboard.writeText(source.textContent);
        button.textContent = "Copied";
      } catch {
        const range = document.createRange();
        range.selectNodeContents(source);
        const selection = window.getSelection();
        selection.removeAllRanges();
        selection.addRange(range);
        button.textContent = "Selected: copy it now";
      }
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  localizeTimes(document);
  copyButtons(document);
  for (const table of document.querySelectorAll("table[data-live]")) {
    followLiveFeed(table);
  }
});
