// The eventfx console's few scripts: live updates of the parts of a page
// marked data-live (the page is fetched again and those parts swapped),
// the console token (kept for this tab only), and poison replay with a
// dry run and a confirmation.
"use strict";

(function () {
  const body = document.body;
  const tokenInput = document.getElementById("token");
  if (tokenInput) {
    tokenInput.value = sessionStorage.getItem("eventfx-console-token") || "";
    tokenInput.addEventListener("change", () => sessionStorage.setItem("eventfx-console-token", tokenInput.value));
  }

  async function refresh() {
    if (document.hidden) return;
    let res;
    try {
      res = await fetch(location.href, { headers: { Accept: "text/html" }, cache: "no-store" });
    } catch (e) {
      return; // the console is away: keep what is shown
    }
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    document.querySelectorAll("[data-live][id]").forEach((el) => {
      const fresh = doc.getElementById(el.id);
      if (fresh && fresh.innerHTML !== el.innerHTML) el.innerHTML = fresh.innerHTML;
    });
    body.dataset.refreshed = String((Number(body.dataset.refreshed) || 0) + 1);
  }
  if (document.querySelector("[data-live]")) setInterval(refresh, 2000);

  // Poison replay.
  const summary = document.getElementById("summary");
  if (!summary) return;
  const group = summary.dataset.group;
  const result = document.getElementById("replay-result");
  const dialog = document.getElementById("confirm");
  let planned = 0; // what the dry run before the confirmation counted
  let last = null; // the last replay's answer (a promise)

  function picked() {
    return Array.from(document.querySelectorAll("input.pick:checked")).map((c) => c.value);
  }

  // replay asks for a replay (or a dry run) of the selected messages, or
  // of the group; with progress set, it reads the replay's progress
  // stream and calls progress with the count of records handled.
  async function replay(dryRun, progress) {
    const ids = picked();
    const req = { dry_run: dryRun, by: document.getElementById("by").value };
    if (ids.length > 0) req.ids = ids;
    req.group = group;
    const headers = { "Content-Type": "application/json" };
    const token = tokenInput ? tokenInput.value : "";
    if (token) headers.Authorization = "Bearer " + token;
    if (progress) headers.Accept = "application/x-ndjson";
    const res = await fetch("/api/poison/replay", { method: "POST", headers, body: JSON.stringify(req) });
    if (!progress || !res.ok || !res.body) {
      const answer = await res.json();
      return { ok: res.ok, status: res.status, answer };
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    let answer = { error: "the replay's answer ended early" };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line) continue;
        const m = JSON.parse(line);
        if (m.result) answer = m.result;
        else if (m.progress) progress(m.progress.done);
      }
    }
    return { ok: !answer.error, status: res.status, answer };
  }

  function show(r) {
    result.hidden = false;
    result.replaceChildren();
    result.className = r.ok ? "ok" : "failed";
    const head = document.createElement("p");
    head.id = "replay-summary";
    head.textContent = r.ok ? r.answer.summary : "HTTP " + r.status + ": " + (r.answer.error || r.answer.summary);
    result.append(head);
    if (!r.answer.messages) return;
    const list = document.createElement("table");
    list.id = "replay-messages";
    const top = document.createElement("tr");
    for (const h of ["action", "message ID", "to", "key", "headers", "payload"]) {
      const th = document.createElement("th");
      th.textContent = h;
      top.append(th);
    }
    list.append(top);
    for (const m of r.answer.messages) {
      const tr = document.createElement("tr");
      tr.className = "replayed-message";
      const to = m.partition >= 0 ? m.topic + " " + m.partition + "/" + m.offset : m.topic;
      const hs = (m.headers || []).map((h) => h.key + ": " + h.value).join("\n");
      for (const v of [m.action, m.id, to, m.key || "", hs, m.payload || m.payload_base64 || ""]) {
        const td = document.createElement("td");
        const pre = document.createElement("pre");
        pre.textContent = v;
        td.append(pre);
        tr.append(td);
      }
      list.append(tr);
    }
    result.append(list);
  }

  document.getElementById("dry-run").addEventListener("click", async () => {
    show(await replay(true));
  });
  document.getElementById("replay").addEventListener("click", async () => {
    const dry = await replay(true);
    show(dry);
    if (!dry.ok) return;
    const n = dry.answer.replayed;
    planned = n;
    document.getElementById("confirm-text").textContent =
      n === 0 ? "Nothing to replay." : "Replay " + n + " message" + (n === 1 ? "" : "s") + " to their original topics? Each is republished once; the replay ledger records it.";
    document.getElementById("confirm-replay").disabled = n === 0;
    dialog.showModal();
  });
  document.getElementById("confirm-cancel").addEventListener("click", () => dialog.close());
  document.getElementById("confirm-replay").addEventListener("click", async () => {
    dialog.close();
    const progress = document.getElementById("replay-progress");
    progress.hidden = false;
    progress.textContent = "Replaying…";
    last = replay(false, (n) => { progress.textContent = "Replaying… " + n + " of " + planned; });
    show(await last);
    // The rows of the messages now replayed say so.
    const r = await last;
    for (const m of (r.answer.messages || [])) {
      if (m.action !== "replayed") continue;
      document.querySelectorAll("tr.message").forEach((row) => {
        if (row.dataset.id !== m.id) return;
        const pick = row.querySelector("input.pick");
        pick.checked = false;
        pick.disabled = true;
        const badge = document.createElement("span");
        badge.className = "badge idle";
        badge.textContent = "replayed";
        row.querySelector("td.status").replaceChildren(badge);
      });
    }
    refresh();
  });
})();
