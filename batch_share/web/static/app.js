// Small progressive enhancements; every page works without them except live progress.
// Text from the server is only ever put into the page with textContent.
"use strict";

function setText(id, value) {
  const node = document.getElementById(id);
  if (node) node.textContent = String(value);
}

function dropzone() {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("sheet-input");
  const form = document.getElementById("upload-form");
  if (!zone || !input || !form) return;
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) {
      input.files = event.dataTransfer.files;
      form.requestSubmit();
    }
  });
}

function problemFilter() {
  const box = document.getElementById("only-problems");
  const table = document.getElementById("sheet-table");
  if (!box || !table) return;
  const apply = () => table.classList.toggle("only-problems", box.checked);
  box.addEventListener("change", apply);
  apply();
}

function statusFilter() {
  const select = document.getElementById("status-filter");
  const table = document.getElementById("result-table");
  if (!select || !table) return;
  const apply = () => {
    for (const row of table.tBodies[0].rows) {
      row.hidden = select.value !== "" && row.dataset.status !== select.value;
    }
  };
  select.addEventListener("change", apply);
  apply();
}

// Sections and settings that concern one mode only show for the mode chosen; without
// script everything shows, each labelled with its mode.
function modeSwitch() {
  const select = document.querySelector("[name=mode]");
  if (!select) return;
  const apply = () => {
    for (const node of document.querySelectorAll("[data-mode]")) {
      node.hidden = node.dataset.mode !== select.value;
    }
  };
  select.addEventListener("change", apply);
  apply();
}

function liveProgress() {
  const box = document.getElementById("progress");
  if (!box) return;
  const source = new EventSource(box.dataset.events);
  const bar = document.getElementById("progress-bar");
  source.addEventListener("planned", (event) => {
    const data = JSON.parse(event.data);
    setText("p-total", data.mutations);
    setText("progress-text", `Planned ${data.lines} lines in ${data.mutations} mutations.`);
  });
  source.addEventListener("progress", (event) => {
    const data = JSON.parse(event.data);
    setText("p-done", data.done);
    setText("p-total", data.total);
    setText("p-succeeded", data.succeeded);
    setText("p-failed", data.failed);
    setText("p-retries", data.retries);
    setText("p-rate", data.rate);
    setText("progress-text", `Sending: ${data.done} of ${data.total} mutations done.`);
    if (bar && data.total) bar.value = data.done / data.total;
  });
  source.addEventListener("guard", (event) => {
    const data = JSON.parse(event.data);
    const guard = document.getElementById("p-guard");
    if (!guard) return;
    guard.hidden = false;
    guard.textContent = data.message;
  });
  source.addEventListener("diff", (event) => {
    const data = JSON.parse(event.data);
    const list = document.getElementById("p-diff");
    if (!list) return;
    const kinds = { "+": "add", "-": "remove", "=": "unchanged", "!": "held" };
    for (const device of data.devices) {
      const item = document.createElement("li");
      item.textContent = device.name ? `${device.device_id} (${device.name}):` : `${device.device_id}:`;
      const lines = document.createElement("ul");
      for (const line of device.lines) {
        const entry = document.createElement("li");
        entry.textContent = line;
        entry.className = kinds[line.charAt(0)] || "";
        lines.appendChild(entry);
      }
      item.appendChild(lines);
      list.appendChild(item);
    }
    const total = document.createElement("li");
    total.textContent = data.total;
    list.appendChild(total);
  });
  source.addEventListener("done", () => {
    source.close();
    setText("progress-text", "Finished; loading the result…");
    window.location.reload();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  dropzone();
  problemFilter();
  statusFilter();
  modeSwitch();
  liveProgress();
});
