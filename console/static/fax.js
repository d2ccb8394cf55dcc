// madoguchi console, FAX page: the inbox over /api/fax (search, the PDF in the page, status,
// the interaction record) and sending a PDF. Same session cookie; CSRF token in a header.
"use strict";
(function () {
  const body = document.body;
  if (body.dataset.page !== "fax") return;
  const T = JSON.parse(document.getElementById("i18n").textContent);
  const N = JSON.parse(document.getElementById("names").textContent);
  const $ = (sel) => document.querySelector(sel);
  const canHandle = body.dataset.canHandle === "yes";
  let current = null;

  async function call(method, path, payload, isForm) {
    const opts = { method, credentials: "same-origin", headers: {} };
    if (method !== "GET") {
      opts.headers["X-CSRF-Token"] = body.dataset.csrf;
      if (isForm) { opts.body = payload; } else {
        opts.headers["Content-Type"] = "application/json";
        opts.body = JSON.stringify(payload || {});
      }
    }
    const resp = await fetch(path, opts);
    if (resp.status === 401) { location.href = "/console/login?next=/console/fax"; }
    let data = {};
    try { data = await resp.json(); } catch (e) { data = {}; }
    return { status: resp.status, data };
  }
  function errorText(r) { return T["err_" + r.data.error] || r.data.message || String(r.status); }
  function when(iso) {
    return iso ? new Date(iso).toLocaleString(body.dataset.lang === "ja" ? "ja-JP" : "en-GB",
      { timeZone: "Asia/Tokyo", dateStyle: "medium", timeStyle: "short" }) : "";
  }
  function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }
  const word = (prefix, v) => T[prefix + v] || v;

  async function search(ev) {
    if (ev) ev.preventDefault();
    const q = new URLSearchParams();
    [["from", "#fax-from"], ["to", "#fax-to"], ["number", "#fax-number"],
     ["status", "#fax-status"], ["result", "#fax-result"]].forEach(([k, sel]) => {
      if ($(sel).value) q.set(k, $(sel).value);
    });
    const r = await call("GET", "/api/fax?" + q.toString());
    const tbody = $("#fax-results tbody");
    tbody.textContent = "";
    if (r.status !== 200) { $("#fax-count").textContent = errorText(r); return; }
    $("#fax-count").textContent = String(r.data.items.length);
    r.data.items.forEach((f) => {
      const tr = document.createElement("tr");
      cell(tr, when(f.started_at)); cell(tr, f.caller); cell(tr, f.remote_station);
      cell(tr, String(f.pages)); cell(tr, word("fax_", f.result)); cell(tr, word("fax_", f.status));
      cell(tr, f.status_by ? f.status_by + " " + when(f.status_at) : "");
      const b = document.createElement("button");
      b.type = "button"; b.textContent = T.fax_open; b.addEventListener("click", () => open(f.id));
      cell(tr, "").appendChild(b);
      tbody.appendChild(tr);
    });
  }

  async function open(id) {
    const r = await call("GET", "/api/fax/" + id);
    if (r.status !== 200) { $("#fax-error").textContent = errorText(r); return; }
    current = r.data;
    $("#fax-card").hidden = false;
    $("#fax-error").textContent = "";
    $("#fax-title").textContent = when(current.started_at) + " " + current.caller + " (" +
      word("fax_", current.result) + ", " + word("fax_", current.status) + ")";
    const pdf = current.pdf_url;
    $("#fax-viewer").hidden = !pdf;
    $("#fax-no-pdf").hidden = !!pdf;
    $("#fax-download").hidden = !pdf;
    if (pdf) {
      $("#fax-viewer").src = pdf;
      $("#fax-download").href = pdf + "?download=1";
    }
    const rec = current.interaction;
    $("#fax-record-text").textContent = rec ?
      [rec.topic, (N.classes || {})[rec.outcome_class] || rec.outcome_class, rec.text].join(" / ") : "";
    if (canHandle) {
      const s = current.status;
      $("#fax-take").hidden = s !== "new";
      $("#fax-release").hidden = s !== "in_progress";
      $("#fax-finish").hidden = s !== "in_progress";
      $("#fax-reopen").hidden = s !== "done";
      $("#fax-record").hidden = !!rec;
    }
  }

  if (canHandle) {
    document.querySelectorAll("#fax-actions button[data-status]").forEach((b) => b.addEventListener("click", async () => {
      if (!current) return;
      const r = await call("POST", "/api/fax/" + current.id + "/status", { status: b.dataset.status });
      if (r.status !== 200) { $("#fax-error").textContent = errorText(r); return; }
      await open(current.id); await search();
    }));
    $("#fax-record").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!current) return;
      const payload = { topic: $("#fax-topic").value, outcome_class: $("#fax-class").value,
        text: $("#fax-text").value };
      if ($("#fax-kind").value) payload.other_kind = $("#fax-kind").value;
      const r = await call("POST", "/api/fax/" + current.id + "/interaction", payload);
      $("#fax-error").textContent = r.status === 201 ? T.fax_record_saved : errorText(r);
      if (r.status === 201) await open(current.id);
    });
  }

  async function sent() {
    const r = await call("GET", "/api/fax/sent?limit=50");
    const tbody = $("#fax-sent tbody");
    tbody.textContent = "";
    if (r.status !== 200) return;
    r.data.items.forEach((f) => {
      const tr = document.createElement("tr");
      cell(tr, when(f.created_at)); cell(tr, f.number); cell(tr, String(f.pages));
      cell(tr, word("fax_", f.state)); cell(tr, String(f.attempts));
      const a = document.createElement("a");
      a.href = f.pdf_url; a.target = "_blank"; a.rel = "noopener"; a.textContent = T.fax_open;
      cell(tr, "").appendChild(a);
      tbody.appendChild(tr);
    });
  }

  const sendForm = $("#fax-send");
  if (sendForm) {
    sendForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const form = new FormData();
      form.append("number", $("#fax-to-number").value);
      form.append("file", $("#fax-file").files[0]);
      const r = await call("POST", "/api/fax/send", form, true);
      $("#fax-send-error").textContent = r.status === 202 ? word("fax_", r.data.state) : errorText(r);
      if (r.status === 202) { sendForm.reset(); await sent(); }
    });
  }

  const faqForm = $("#fax-faq");
  if (faqForm) {
    faqForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const r = await call("GET", "/api/faq?q=" + encodeURIComponent($("#fax-faq-q").value));
      const list = $("#fax-faq-results");
      list.textContent = "";
      if (r.status !== 200) { $("#fax-text-error").textContent = errorText(r); return; }
      r.data.items.forEach((f) => {
        const li = document.createElement("li");
        const b = document.createElement("button");
        b.type = "button"; b.textContent = f.question;
        b.addEventListener("click", () => {
          $("#fax-heading").value = f.question;
          $("#fax-text-body").value = f.answer;
        });
        li.appendChild(b); list.appendChild(li);
      });
    });
    $("#fax-text-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const r = await call("POST", "/api/fax/send-text", { heading: $("#fax-heading").value,
        text: $("#fax-text-body").value, number: $("#fax-text-number").value });
      $("#fax-text-error").textContent = r.status === 202 ? word("fax_", r.data.state) : errorText(r);
      if (r.status === 202) { $("#fax-text-form").reset(); await sent(); }
    });
  }

  $("#fax-search").addEventListener("submit", search);
  search(); sent();
  setInterval(() => { search(); sent(); }, 30000);
})();
