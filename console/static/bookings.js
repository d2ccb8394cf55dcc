// The console's bookings page: the catalogue, booking for a caller, finding, cancelling and
// changing bookings, all through /api/bookings (same origin, CSRF token in a header).
"use strict";
(function () {
  const body = document.body;
  if (body.dataset.page !== "bookings") { return; }
  const $ = (sel) => document.querySelector(sel);
  const tokyo = { timeZone: "Asia/Tokyo", year: "numeric", month: "2-digit", day: "2-digit",
                  hour: "2-digit", minute: "2-digit" };
  const when = (iso) => new Date(iso).toLocaleString("ja-JP", tokyo);

  async function api(method, path, data) {
    const opts = { method, credentials: "same-origin", headers: {} };
    if (method !== "GET") {
      opts.headers["X-CSRF-Token"] = body.dataset.csrf;
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(data || {});
    }
    const resp = await fetch(path, opts);
    let json = {};
    try { json = await resp.json(); } catch (e) { json = {}; }
    return { status: resp.status, data: json };
  }
  function cell(tr, text) {
    const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td;
  }
  function say(sel, resp, ok) {
    $(sel).textContent = resp.status < 300 ? ok : (resp.data.message || ("error " + resp.status));
  }

  async function loadEvents() {
    const cat = $("#bk-category").value.trim();
    const resp = await api("GET", "/api/bookings/events" + (cat ? "?category=" + encodeURIComponent(cat) : ""));
    const tbody = $("#bk-events tbody");
    const select = $("#bk-session") || document.createElement("select");
    tbody.textContent = ""; select.textContent = "";
    for (const ev of resp.data.events || []) {
      for (const s of ev.sessions) {
        const tr = document.createElement("tr");
        cell(tr, ev.id); cell(tr, ev.title_ja); cell(tr, when(s.starts_at)); cell(tr, s.venue_ja);
        cell(tr, String(s.capacity)); cell(tr, String(s.taken)); cell(tr, ev.window);
        cell(tr, ev.board_status || "");
        const links = cell(tr, "");
        if (body.dataset.role !== "operator") {
          const a = document.createElement("a");
          a.href = "/api/bookings/sessions/" + s.id + "/participants.csv";
          a.textContent = "名簿CSV / list";
          links.appendChild(a);
        }
        tbody.appendChild(tr);
        const opt = document.createElement("option");
        opt.value = String(s.id);
        opt.textContent = ev.title_ja + " " + when(s.starts_at) + " " + s.venue_ja + " (" + s.free + ")";
        opt.disabled = !ev.bookable && ev.window !== "closed";
        select.appendChild(opt);
      }
    }
  }

  async function search(ev) {
    if (ev) { ev.preventDefault(); }
    const number = $("#bk-q-number").value.trim();
    const phone = $("#bk-q-phone").value.trim();
    const q = number ? "number=" + encodeURIComponent(number) : "phone=" + encodeURIComponent(phone);
    const resp = await api("GET", "/api/bookings/search?" + q);
    const tbody = $("#bk-found tbody");
    tbody.textContent = "";
    for (const b of resp.data.bookings || []) {
      const tr = document.createElement("tr");
      cell(tr, b.display); cell(tr, b.title_ja); cell(tr, when(b.starts_at)); cell(tr, b.name);
      cell(tr, String(b.party)); cell(tr, b.status);
      const actions = cell(tr, "");
      if (b.status !== "cancelled" && b.status !== "lost") {
        const cancel = document.createElement("button");
        cancel.type = "button"; cancel.textContent = "取消 / cancel";
        cancel.addEventListener("click", async () => {
          if (!window.confirm("取り消しますか / Cancel " + b.display + "?")) { return; }
          await api("POST", "/api/bookings/" + b.number + "/cancel");
          search(); loadEvents();
        });
        const change = document.createElement("button");
        change.type = "button"; change.textContent = "人数変更 / people";
        change.addEventListener("click", async () => {
          const n = window.prompt("人数 / people", String(b.party));
          if (n === null) { return; }
          const r = await api("POST", "/api/bookings/" + b.number + "/change", { party: Number(n) });
          if (r.status >= 300) { window.alert(r.data.message || r.status); }
          search(); loadEvents();
        });
        actions.append(cancel, change);
      }
      tbody.appendChild(tr);
    }
  }

  async function loadCounts() {
    const tbody = $("#bk-counts tbody");
    if (!tbody) { return; }
    const resp = await api("GET", "/api/bookings/counts");
    tbody.textContent = "";
    const names = { web: "ウェブ / web", desk: "電話(オペレーター) / desk", ivr: "自動音声 / IVR" };
    for (const [channel, n] of Object.entries(resp.data.by_channel || {})) {
      const tr = document.createElement("tr");
      cell(tr, names[channel] || channel);
      for (const k of ["confirmed", "waiting", "applied", "cancelled"]) { cell(tr, String(n[k] || 0)); }
      tbody.appendChild(tr);
    }
  }

  $("#bk-reload").addEventListener("click", () => { loadEvents(); loadCounts(); });
  const desk = $("#bk-book");
  if (desk) {
  $("#bk-search").addEventListener("submit", search);
  desk.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const age = $("#bk-age").value;
    const data = {
      session_id: Number($("#bk-session").value), name: $("#bk-name").value,
      furigana: $("#bk-furigana").value, phone: $("#bk-phone").value,
      party: Number($("#bk-party").value), note: $("#bk-note").value,
      resident: $("#bk-resident").checked, age: age === "" ? null : Number(age),
    };
    if (body.dataset.call) { data.call_id = body.dataset.call; }
    const resp = await api("POST", "/api/bookings", data);
    say("#bk-book-result", resp, "申込番号 / number: " + resp.data.display + " (" + resp.data.status + ")");
    loadEvents();
  });
  }
  const form = $("#bk-event");
  if (form) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const data = {
        id: $("#ev-id").value.trim(), category: $("#ev-category").value.trim(),
        title_ja: $("#ev-title-ja").value, title_en: $("#ev-title-en").value,
        fee_ja: $("#ev-fee").value, rule: $("#ev-rule").value,
        opens_at: $("#ev-opens").value, closes_at: $("#ev-closes").value,
        waiting_list: $("#ev-waiting").checked, residents_only: $("#ev-residents").checked,
        board_event: $("#ev-board").value.trim() || null,
        sessions: [{ starts_at: $("#ev-starts").value, ends_at: $("#ev-ends").value,
                     venue_ja: $("#ev-venue").value, capacity: Number($("#ev-capacity").value) }],
      };
      const resp = await api("POST", "/api/bookings/events", data);
      say("#bk-event-result", resp, "登録しました / saved: " + data.id);
      loadEvents();
    });
  }
  loadEvents();
  loadCounts();
  if (body.dataset.caller && desk) { search(); }
})();
