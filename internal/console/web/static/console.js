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

  function picked() {
    return Array.from(document.querySelectorAll("input.pick:checked")).map((c) => c.value);
  }

  async function replay(dryRun) {
    const ids = picked();
    const req = { dry_run: dryRun, by: document.getElementById("by").value };
    if (ids.length > 0) req.ids = ids;
    req.group = group;
    const headers = { "Content-Type": "application/json" };
    const token = tokenInput ? tokenInput.value : "";
    if (token) headers.Authorization = "Bearer " + token;
    const res = await fetch("/api/poison/replay", { method: "POST", headers, body: JSON.stringify(req) });
    const answer = await res.json();
    return { ok: res.ok, status: res.status, answer };
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
    document.getElementById("confirm-text").textContent =
      n === 0 ? "Nothing to replay." : "Replay " + n + " message" + (n === 1 ? "" : "s") + " to their original topics? Each is republished once; the replay ledger records it.";
    document.getElementById("confirm-replay").disabled = n === 0;
    dialog.showModal();
  });
  document.getElementById("confirm-cancel").addEventListener("click", () => dialog.close());
  document.getElementById("confirm-replay").addEventListener("click", async () => {
    dialog.close();
    result.hidden = false;
    result.textContent = "Replaying…";
    show(await replay(false));
    document.querySelectorAll("input.pick:checked").forEach((c) => { c.checked = false; c.disabled = true; });
    refresh();
  });
})();
