// madoguchi console: small page scripts over the JSON API (same-origin, session cookie,
// CSRF token in a header for every state change). What a person reads is a name in the page's
// language (the "names" map the server renders into the page), never an id.
"use strict";
(function () {
  const body = document.body;
  const T = JSON.parse(document.getElementById("i18n").textContent);
  const N = JSON.parse(document.getElementById("names").textContent);
  const lang = body.dataset.lang;
  const $ = (sel) => document.querySelector(sel);

  async function api(method, path, data) {
    const opts = { method, credentials: "same-origin", headers: {} };
    if (method !== "GET") {
      opts.headers["X-CSRF-Token"] = body.dataset.csrf;
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(data || {});
    }
    const resp = await fetch(path, opts);
    if (resp.status === 401) { location.href = "/console/login?next=" + encodeURIComponent(location.pathname); }
    let json = {};
    try { json = await resp.json(); } catch (e) { json = {}; }
    return { status: resp.status, data: json };
  }

  function cell(tr, text) { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }
  function clock(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const m = Math.floor(s / 60);
    return m + ":" + String(s % 60).padStart(2, "0");
  }
  function since(iso) { return iso ? (Date.now() - Date.parse(iso)) / 1000 : 0; }
  // a satisfaction score or target, points of 100 (one decimal at most); — when there is none
  function points(v) {
    return v === null || v === undefined ? "—" : T.sat_points.replace("{n}", String(Math.round(v * 10) / 10));
  }

  // ---- names: ids from the API, shown as the configuration names them ---------------------
  const named = (table, id) => (id === null || id === undefined || id === "") ? "" : ((N[table] || {})[id] || id);
  const service = (id) => named("services", id);
  const queue = (id) => named("queues", id);
  const topic = (id) => named("topics", id);
  const language = (code) => named("languages", code);
  const node = (id) => named("nodes", id);
  const outcomeClass = (v) => named("classes", v);
  const otherKind = (v) => named("kinds", v);
  // an operator as people know them: name (extension)
  function operator(id) {
    if (!id) return "";
    const name = (N.agents || {})[id];
    return name && name !== id ? name + " (" + id + ")" : id;
  }
  // the state a person needs: an operator whose phone is not registered cannot take calls
  function stateText(a) {
    if (a.reachable === false && a.state === "available") return T.st_unreachable;
    return (T["st_" + a.state] || a.state) + (a.reason ? " (" + (T["reason_" + a.reason] || a.reason) + ")" : "");
  }

  // ---- dates: the city's clock (Asia/Tokyo), 2026年12月2日 4:23 or 2 December 2026, 04:23 --
  const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  const TOKYO = new Intl.DateTimeFormat("en-US", { timeZone: "Asia/Tokyo", year: "numeric",
    month: "numeric", day: "numeric", hour: "numeric", minute: "2-digit", hourCycle: "h23" });
  function tokyo(iso) {
    const p = {};
    TOKYO.formatToParts(new Date(iso)).forEach((x) => { p[x.type] = x.value; });
    return { y: Number(p.year), m: Number(p.month), d: Number(p.day), h: Number(p.hour) % 24, min: p.minute };
  }
  function dayOf(y, m, d) { return lang === "ja" ? y + "年" + m + "月" + d + "日" : d + " " + MONTHS[m - 1] + " " + y; }
  function day(isoDate) {  // a calendar day (YYYY-MM-DD), already the city's
    if (!isoDate) return "";
    const [y, m, d] = isoDate.split("-").map(Number);
    return dayOf(y, m, d);
  }
  function when(iso) {  // an instant
    if (!iso) return "";
    const t = tokyo(iso);
    return lang === "ja" ? dayOf(t.y, t.m, t.d) + " " + t.h + ":" + t.min
      : dayOf(t.y, t.m, t.d) + ", " + String(t.h).padStart(2, "0") + ":" + t.min;
  }

  // ---- errors: each error id in the page's language; the server's message only for an id
  // the page does not know (it stays in the tooltip for whoever needs the detail)
  function failure(r) {
    const known = T["err_" + r.data.error];
    if (known) return known;
    return r.data.message ? T.error + ": " + r.data.message : T.error + " (" + r.status + ")";
  }
  // an answer shown in `el`: okText when it is `ok`, else the error in words
  function report(el, r, okText, ok) {
    const good = r.status === (ok || 200);
    el.textContent = good ? okText : failure(r);
    el.title = !good && r.data.message ? r.data.message : "";
    el.classList.toggle("error", !good);
    return good;
  }
  function showError(r) {
    const el = $("#error");
    if (el) report(el, r, "", r.status < 400 ? r.status : -1);  // any success clears it
  }

  // the language toggle keeps the page's other parameters (an admin's ?agent=...)
  const toggle = $("#lang");
  if (toggle) {
    const q = new URLSearchParams(location.search);
    q.set("lang", lang === "ja" ? "en" : "ja");
    toggle.href = "?" + q.toString();
  }

  // live operator and call events; reconnects, and shows whether the page is connected
  function events(onMessage, onOpen) {
    const badge = $("#ws-state");
    function connect() {
      const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/events");
      ws.onopen = () => { if (badge) { badge.textContent = T.connected; badge.className = "badge connected"; } if (onOpen) onOpen(); };
      ws.onmessage = (m) => onMessage(JSON.parse(m.data));
      ws.onclose = () => { if (badge) { badge.textContent = T.offline; badge.className = "badge"; } setTimeout(connect, 2000); };
    }
    connect();
  }
  function debounced(fn, ms) {
    let timer = null;
    return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  // ---- operator desk ---------------------------------------------------------------
  function desk() {
    const agent = body.dataset.agent;
    const allowed = JSON.parse($("#transitions").textContent);  // state -> actions
    const kept = "madoguchi-record-" + agent;
    const fields = ["record-call", "record-topic", "record-class", "record-kind", "record-faq", "record-text"];
    let current = null;
    let surveyCall = null;  // the call the survey mark's answer shown belongs to
    // the record form survives a reload (the language toggle): this tab only
    function keep() {
      const values = {};
      fields.forEach((id) => { values[id] = $("#" + id).value; });
      sessionStorage.setItem(kept, JSON.stringify(values));
    }
    function restore() {
      let values = {};
      try { values = JSON.parse(sessionStorage.getItem(kept) || "{}"); } catch (e) { values = {}; }
      fields.forEach((id) => { if (typeof values[id] === "string") $("#" + id).value = values[id]; });
    }
    function tickWait() {
      // the caller waits until answered: the clock runs while ringing and stops on answer
      const a = current;
      const el = $("#call-wait");
      if (!a || !a.call || !a.call.queued_at) { el.textContent = "—"; return; }
      const answered = a.state === "on_call" || a.state === "wrap_up";
      const end = answered && a.state_since ? Date.parse(a.state_since) : Date.now();
      el.textContent = clock((end - Date.parse(a.call.queued_at)) / 1000);
      el.dataset.live = answered ? "stopped" : "running";
    }
    function render(a) {
      current = a;
      const st = $("#state");
      st.textContent = stateText(a);
      st.className = "state " + a.state + (a.reachable === false ? " unreachable" : "");
      st.dataset.state = a.state;
      const phone = $("#phone");
      phone.textContent = a.reachable ? T.reachable : T.unreachable;
      phone.className = "badge" + (a.reachable ? " connected" : "");
      phone.dataset.reachable = a.reachable ? "yes" : "no";
      // only what the operators' transition table allows in this state
      const can = allowed[a.state] || [];
      document.querySelectorAll("button[data-action]").forEach((b) => { b.disabled = !can.includes(b.dataset.action); });
      $("#reason").disabled = !can.includes("away");
      const c = a.call;
      $("#call-live").hidden = !(c && (a.state === "ringing" || a.state === "on_call"));
      // a callback: the operator is rung first, then the citizen is dialled
      $("#call-caller").textContent = c ? (c.callback ? T.callback_pop + " → " : "") + c.caller : "—";
      $("#call-language").textContent = c ? (language(c.language) || "—") : "—";
      $("#call-service").textContent = c ? service(c.service) : "—";
      $("#call-topic").textContent = c ? (topic(c.topic) || "—") : "—";
      $("#call-flow").textContent = c ? (c.flow_path || []).map(node).join(" › ") : "—";
      tickWait();
      $("#no-call").hidden = !!c;
      // the survey is asked once the operator hangs up: a call is marked while they talk
      $("#survey-mark").disabled = !(c && a.state === "on_call");
      if ((c ? c.call_id : null) !== surveyCall) {
        surveyCall = c ? c.call_id : null;
        const said = $("#survey-result");
        said.textContent = ""; said.title = ""; said.classList.remove("error");
      }
      // the bookings page in a new tab, for the caller on the line: their number filled in and
      // the booking linked to this call (the desk stays open beside it)
      const book = $("#call-book");
      book.hidden = !c;
      if (c) book.href = "/console/bookings?" + new URLSearchParams({ caller: c.caller, call: c.call_id }).toString();
      if (c && $("#record-call").value !== c.call_id) {
        // the record form keeps the last call after it ends, so it can be written in wrap-up
        $("#record-call").value = c.call_id;
        $("#record-topic").value = topic(c.topic);
        keep();
      }
    }
    async function load() {
      const r = await api("GET", "/api/agents");
      const a = (r.data.agents || []).find((x) => x.id === agent);
      if (a) render(a);
    }
    document.querySelectorAll("button[data-action]").forEach((b) => b.addEventListener("click", async () => {
      const action = b.dataset.action;
      const payload = { action };
      if (action === "away") payload.reason = $("#reason").value;
      const r = await api("POST", "/api/agents/" + agent + "/state", payload);
      showError(r);
      if (r.status === 200) render(r.data);
    }));
    async function transfer(target) {
      if (!current || !current.call) return;
      const r = await api("POST", "/api/calls/" + current.call.call_id + "/transfer", { target });
      showError(r);
    }
    $("#transfer-form").addEventListener("submit", (e) => { e.preventDefault(); transfer($("#transfer-target").value); });
    $("#survey-mark").addEventListener("click", async () => {
      if (!current || !current.call) return;
      const id = current.call.call_id;
      const r = await api("POST", "/api/calls/" + encodeURIComponent(id) + "/survey");
      if (id === surveyCall) report($("#survey-result"), r, T.survey_marked);
    });
    restore();
    $("#record-form").addEventListener("input", keep);
    $("#record-form").addEventListener("change", keep);
    $("#record-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const faq = $("#record-faq").value ? $("#record-faq").value.split(",") : [];
      // a topic shown by its name is recorded by its id; anything else as typed
      const typed = $("#record-topic").value.trim();
      const id = Object.keys(N.topics || {}).find((k) => N.topics[k] === typed);
      const payload = { call_id: $("#record-call").value, topic: id || typed,
        outcome_class: $("#record-class").value, text: $("#record-text").value, agent_id: agent,
        faq_refs: faq };
      if ($("#record-kind").value) payload.other_kind = $("#record-kind").value;
      const r = await api("POST", "/api/interactions", payload);
      if (report($("#record-result"), r, T.saved, 201)) sessionStorage.removeItem(kept);
    });
    $("#lookup").addEventListener("submit", async (e) => {
      e.preventDefault();
      const q = encodeURIComponent($("#lookup-q").value.trim());
      const [dir, faq] = await Promise.all([api("GET", "/api/directory?q=" + q), api("GET", "/api/faq?q=" + q)]);
      if (dir.status >= 400) showError(dir);
      const people = dir.data.items || [];
      $("#directory").hidden = !people.length;
      $("#directory tbody").replaceChildren(...people.map((d) => {
        const tr = document.createElement("tr");
        tr.className = "person";
        cell(tr, d.section); cell(tr, d.name); cell(tr, d.extension); cell(tr, d.note);
        const b = document.createElement("button");
        b.textContent = T.transfer;
        b.className = "transfer";
        // click-to-transfer: the directory's extension goes to the transfer API as is
        b.addEventListener("click", () => { $("#transfer-target").value = d.extension; transfer(d.extension); });
        tr.appendChild(document.createElement("td")).appendChild(b);
        return tr;
      }));
      const answers = faq.data.items || [];
      $("#faq").hidden = !answers.length;
      $("#faq tbody").replaceChildren(...answers.map((f) => {
        const tr = document.createElement("tr");
        tr.className = "faq";
        cell(tr, f.id); cell(tr, f.question); cell(tr, f.answer);
        const b = document.createElement("button");
        b.textContent = T.cite;
        b.addEventListener("click", () => {
          const refs = new Set($("#record-faq").value ? $("#record-faq").value.split(",") : []);
          refs.add(f.id);
          $("#record-faq").value = [...refs].join(",");
          keep();
        });
        tr.appendChild(document.createElement("td")).appendChild(b);
        return tr;
      }));
    });
    setInterval(() => {
      if (current) $("#since").textContent = clock(since(current.state_since || current.idle_since));
      tickWait();
    }, 500);
    // live: every change of this operator's state (a call ringing, answered, ended) reloads
    // the desk; a slow poll covers a missed event and the phone's registration
    events((m) => {
      if ((m.type === "agent" || m.type === "reachability") && m.agent === agent) load();
    }, load);
    setInterval(load, 5000);
    load();
  }

  // ---- small SVG charts (no library): half-hour bars and a rate against its target --------
  const SVG = "http://www.w3.org/2000/svg";
  function svgEl(name, attrs, parent) {
    const el = document.createElementNS(SVG, name);
    Object.entries(attrs).forEach(([k, v]) => el.setAttribute(k, String(v)));
    if (parent) parent.appendChild(el);
    return el;
  }
  function slotOf(key) {  // "2026-12-02T09:30" -> 19 (the day's half-hours, 0..47)
    const [h, m] = key.slice(11, 16).split(":").map(Number);
    return h * 2 + (m >= 30 ? 1 : 0);
  }
  function slotLabel(slot) {
    const h = Math.floor(slot / 2);
    return lang === "ja" ? h + "時" : String(h).padStart(2, "0") + ":00";
  }
  // the slots shown: from 8:00 (or the first call) to now (or the last group)
  function slotRange(groups) {
    const slots = groups.map((g) => slotOf(g.key));
    const now = tokyo(new Date().toISOString());
    const first = Math.min(16, ...slots);
    const last = Math.max(now.h * 2 + (Number(now.min) >= 30 ? 1 : 0), ...slots);
    return [first, last];
  }
  function chart(target, groups, series, opts) {
    const W = 720, H = 200, L = 40, B = 24, top = 26;  // the legend above the plot
    const [first, last] = slotRange(groups);
    const n = last - first + 1;
    const bySlot = new Map(groups.map((g) => [slotOf(g.key), g]));
    const max = opts.max || Math.max(1, ...groups.flatMap((g) => series.map((s) => s.value(g) || 0)));
    const y = (v) => top + (H - top - B) * (1 - v / max);
    const svg = svgEl("svg", { viewBox: "0 0 " + W + " " + H, role: "img", class: "chart-svg" });
    const slotW = (W - L - 4) / n;
    // axis: a few steps of the value, and a label every two hours
    const steps = opts.percent ? [0, 0.5, 1] : [0, Math.ceil(max / 2), max];
    steps.forEach((v) => {
      svgEl("line", { x1: L, x2: W - 4, y1: y(v), y2: y(v), class: "grid" }, svg);
      svgEl("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end", class: "axis" }, svg)
        .textContent = opts.percent ? Math.round(v * 100) + "%" : String(v);
    });
    for (let slot = first; slot <= last; slot++) {
      const x = L + (slot - first) * slotW;
      if (slot % 4 === 0) {
        svgEl("text", { x: x + 2, y: H - 6, class: "axis" }, svg).textContent = slotLabel(slot);
      }
      const g = bySlot.get(slot);
      if (!g) continue;
      series.forEach((s, i) => {
        const v = s.value(g);
        if (v === null || v === undefined) return;
        const w = slotW / series.length - 1;
        const bar = svgEl("rect", { x: x + i * (w + 1), y: y(v), width: Math.max(1, w),
          height: Math.max(0, H - B - y(v)), class: "bar " + s.cls }, svg);
        bar.dataset.slot = g.key;
        svgEl("title", {}, bar).textContent = slotLabel(slot).replace(/:00$|時$/, "") + ":" +
          (slot % 2 ? "30" : "00") + " " + s.label + " " + (opts.percent ? Math.round(v * 100) + "%" : v);
      });
    }
    if (opts.target !== undefined && opts.target !== null) {
      svgEl("line", { x1: L, x2: W - 4, y1: y(opts.target), y2: y(opts.target), class: "target" }, svg);
    }
    const legend = svgEl("g", {}, svg);
    series.forEach((s, i) => {
      svgEl("rect", { x: L + i * 110, y: 4, width: 12, height: 12, class: "bar " + s.cls }, legend);
      svgEl("text", { x: L + 16 + i * 110, y: 14, class: "axis" }, legend).textContent = s.label;
    });
    target.replaceChildren(svg);
  }

  // ---- supervisor wallboard ----------------------------------------------------------
  function wallboard() {
    const agents = new Map();
    function row(a) {
      const tr = document.createElement("tr");
      tr.id = "agent-" + a.id;
      tr.dataset.reachable = a.reachable ? "yes" : "no";
      cell(tr, operator(a.id)).className = "operator";
      const phone = cell(tr, a.reachable ? T.reachable : T.unreachable);
      phone.className = "phone" + (a.reachable ? "" : " unreachable");
      const st = cell(tr, stateText(a));
      st.className = "state " + a.state + (a.reachable === false ? " unreachable" : "");
      st.dataset.state = a.state;
      const t = cell(tr, clock(since(a.state_since)));
      t.className = "since";
      t.dataset.since = a.state_since || "";
      cell(tr, a.call ? a.call.caller : "");
      cell(tr, String(a.today ? a.today.calls : 0)).className = "today-calls";
      cell(tr, clock(a.today ? a.today.talk_s : 0));
      const td = cell(tr, "");
      ["listen", "whisper", "barge"].forEach((mode) => {
        const b = document.createElement("button");
        b.textContent = T[mode];
        b.dataset.mode = mode;
        b.disabled = !a.call;
        b.addEventListener("click", async () => {
          const r = await api("POST", "/api/agents/" + a.id + "/monitor", { mode, supervisor: $("#supervisor").value });
          showError(r);
        });
        td.appendChild(b);
      });
      return tr;
    }
    function staffing() {
      // operators whose phone is not registered take no call: counted apart, and left out
      // of the occupancy (busy among the registered operators who are taking calls)
      const counts = {};
      let busy = 0, staffed = 0;
      agents.forEach((a) => {
        const key = a.reachable === false ? "unreachable" : a.state;
        counts[key] = (counts[key] || 0) + 1;
        if (a.reachable === false) return;
        if (["ringing", "on_call", "wrap_up"].includes(a.state)) { busy++; staffed++; }
        else if (a.state === "available") staffed++;
      });
      const order = ["available", "ringing", "on_call", "wrap_up", "away", "logged_out", "unreachable"];
      $("#staffing").replaceChildren(...order.filter((k) => counts[k]).map((k) => {
        const span = document.createElement("span");
        span.className = "count " + k;
        span.dataset.state = k;
        span.textContent = (k === "unreachable" ? T.st_unreachable : T["st_" + k]) + " " + counts[k];
        return span;
      }));
      $("#occupancy").textContent = staffed ? pct(busy / staffed) : "—";
    }
    function draw() {
      $("#agents tbody").replaceChildren(...[...agents.values()].map(row));
      staffing();
    }
    async function loadAgents() {
      const r = await api("GET", "/api/agents");
      if (r.status !== 200) return;
      agents.clear();
      (r.data.agents || []).forEach((a) => agents.set(a.id, a));
      draw();
    }
    async function loadQueues() {
      const r = await api("GET", "/api/queues");
      $("#queues tbody").replaceChildren(...(r.data.queues || []).map((q) => {
        const tr = document.createElement("tr");
        tr.id = "queue-" + q.id;
        cell(tr, queue(q.id)); cell(tr, String(q.waiting)); cell(tr, clock(q.longest_wait_s));
        return tr;
      }));
    }
    function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }
    async function loadKpi() {
      // "today" is the city's day, in Tokyo, whatever the wallboard's own zone; the half-hour
      // groups draw the charts
      const today = new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Tokyo" });
      const r = await api("GET", "/api/kpi?from=" + today + "&to=" + today + "&by=halfhour");
      if (r.status !== 200) return;
      const total = r.data.total || {};
      $("#kpi-offered").textContent = String(total.offered || 0);
      $("#kpi-answered").textContent = String(total.answered || 0);
      $("#kpi-abandoned").textContent = String(total.abandoned || 0);
      $("#kpi-rates").replaceChildren(...Object.entries(r.data.targets || {}).map(([name, target]) => {
        const tr = document.createElement("tr");
        tr.id = "kpi-" + name;
        cell(tr, T["kpi_" + name] || name); cell(tr, pct(total[name])); cell(tr, pct(target));
        const met = (total.met || {})[name];
        cell(tr, met === null || met === undefined ? "—" : (met ? "✔" : "✘"));
        return tr;
      }));
      // today's citizens' score (responses) and this month's staff score (ratings)
      const sat = r.data.satisfaction || {};
      [["citizen_satisfaction", sat.citizen, T.sat_responses, "responses"],
        ["staff_satisfaction", sat.staff, T.sat_ratings, "ratings"]].forEach(([key, s, count, field]) => {
        const tr = $("#kpi-" + key);
        if (!tr || !s) return;
        tr.querySelector(".value").textContent = s.score === null || s.score === undefined ? "—"
          : points(s.score) + " (" + count.replace("{n}", String(s[field] || 0)) + ")";
        tr.querySelector(".target").textContent = points(s.target);
        tr.querySelector(".met").textContent = s.met === null || s.met === undefined ? "—" : (s.met ? "✔" : "✘");
      });
      const groups = (r.data.groups || []).filter((g) => g.offered > 0);
      if (!groups.length) {
        [$("#chart-calls"), $("#chart-quick")].forEach((el) => { el.textContent = T.no_calls_today; });
        return;
      }
      chart($("#chart-calls"), groups, [
        { label: T.offered, cls: "offered", value: (g) => g.offered },
        { label: T.answered, cls: "answered", value: (g) => g.answered }], {});
      chart($("#chart-quick"), groups, [
        { label: T.kpi_quick_answer_rate, cls: "quick", value: (g) => g.quick_answer_rate }],
        { percent: true, max: 1, target: (r.data.targets || {}).quick_answer_rate });
    }
    // a call's record is stored: today's counts, KPIs and operators' totals follow at once
    // (several calls ending together make one refresh)
    const afterCall = debounced(() => { loadKpi(); loadAgents(); }, 250);
    events((m) => {
      if (m.type === "call") { afterCall(); return; }
      if (m.type === "reachability") { loadAgents(); return; }
      if (m.type !== "agent") return;
      // show the change at once, then fetch the full row (call, today's counts)
      const a = agents.get(m.agent) || { id: m.agent };
      agents.set(m.agent, Object.assign({}, a, { state: m.state, reason: m.reason, state_since: m.at }));
      draw();
      loadAgents();
      loadQueues();
    }, () => { loadAgents(); loadQueues(); loadKpi(); });
    setInterval(loadKpi, 30000);  // a missed event, and the charts' clock
    setInterval(loadAgents, 10000);  // a missed event (phones registering come as events)
    setInterval(() => document.querySelectorAll("#agents td.since").forEach((td) => {
      if (td.dataset.since) td.textContent = clock(since(td.dataset.since));
    }), 1000);
    setInterval(loadQueues, 2000);
  }

  // ---- city viewer: search, play with seek and waveform -----------------------------------
  function viewer() {
    const player = $("#player");
    let peaks = [];
    function local(input) {
      // datetime-local has no zone: it is read as the city's clock (Tokyo, +09:00 all year)
      if (!input.value) return "";
      return input.value + (input.value.length === 16 ? ":00" : "") + "+09:00";
    }
    function drawWave() {
      const c = $("#wave");
      const g = c.getContext("2d");
      g.clearRect(0, 0, c.width, c.height);
      const mid = c.height / 2;
      g.fillStyle = "#6fb3ff";
      peaks.forEach((p, i) => {
        const x = (i / peaks.length) * c.width;
        const h = Math.max(1, Math.abs(p) * mid);
        g.fillRect(x, mid - h, Math.max(1, c.width / peaks.length), 2 * h);
      });
      if (player.duration > 0) {
        g.fillStyle = "#ffcc00";
        g.fillRect((player.currentTime / player.duration) * c.width, 0, 2, c.height);
      }
    }
    function flatten(data) {
      // one value per bucket: the louder of the channels' peaks
      const chans = data.channels || data.peaks || [];
      if (chans.length && Array.isArray(chans[0])) {
        return chans[0].map((_, i) => Math.max(...chans.map((ch) => Math.abs(ch[i] || 0))));
      }
      return Array.isArray(chans) ? chans.map((v) => Math.abs(v)) : [];
    }
    async function open(rec) {
      $("#player-card").hidden = false;
      player.src = rec.audio_url;
      $("#download").href = rec.audio_url + "?download=1";
      const r = await api("GET", rec.peaks_url + "?buckets=400");
      peaks = flatten(r.data);  // already 0..1 of full scale
      drawWave();
    }
    async function interactions(from, to) {
      // interaction records of the same period and service (this month when no dates)
      const q = new URLSearchParams();
      if (from) q.set("from", from);
      if (to) q.set("to", to);
      const svc = $("#service").value;
      if (svc) q.set("service", svc);
      const r = await api("GET", "/api/interactions?" + q.toString());
      const agentFilter = $("#agent").value;
      const rows = (r.data.interactions || []).filter((i) => !agentFilter || i.agent_id === agentFilter);
      $("#interactions tbody").replaceChildren(...rows.map((i) => {
        const tr = document.createElement("tr");
        tr.dataset.call = i.call_id;
        cell(tr, when(i.call_offered_at));
        cell(tr, operator(i.agent_id)); cell(tr, service(i.service)); cell(tr, topic(i.topic));
        cell(tr, outcomeClass(i.outcome_class) + (i.other_kind ? " (" + otherKind(i.other_kind) + ")" : ""));
        cell(tr, i.text);
        return tr;
      }));
    }
    $("#wave").addEventListener("click", (e) => {
      if (!(player.duration > 0)) return;
      const rect = e.target.getBoundingClientRect();
      player.currentTime = ((e.clientX - rect.left) / rect.width) * player.duration;
      drawWave();
    });
    player.addEventListener("timeupdate", drawWave);
    player.addEventListener("loadedmetadata", drawWave);
    // the city staff's monthly rating: the month's score for every reader, the form for
    // those who may rate (the page has the send button only for them)
    const fieldLabel = { month: T.month, rating: T.rating, points: T.rating, comment: T.comment };
    async function monthScore() {
      const month = $("#rating-month").value;
      const r = await api("GET", "/api/staff-satisfaction" + (month ? "?month=" + encodeURIComponent(month) : ""));
      if (r.status !== 200) { report($("#rating-result"), r, ""); return; }
      $("#month-score").textContent = points(r.data.score);
      $("#month-count").textContent = T.sat_ratings.replace("{n}", String(r.data.ratings_count || 0));
    }
    $("#rating-month").addEventListener("change", monthScore);
    $("#rating-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!$("#rating-send")) { monthScore(); return; }
      const r = await api("POST", "/api/staff-satisfaction", { month: $("#rating-month").value,
        rating: Number($("#rating-value").value), comment: $("#rating-comment").value });
      const el = $("#rating-result");
      if (report(el, r, r.status === 201 ? T.rating_added : T.rating_replaced, r.status < 300 ? r.status : 200)) {
        monthScore();
      } else if (r.data.field) {
        el.textContent += " (" + (fieldLabel[r.data.field] || r.data.field) + ")";
      }
    });
    monthScore();
    $("#search").addEventListener("submit", async (e) => {
      e.preventDefault();
      const q = new URLSearchParams();
      const from = local($("#from")), to = local($("#to"));
      if (from) q.set("from", from);
      if (to) q.set("to", to);
      ["agent", "caller", "service"].forEach((id) => { const v = $("#" + id).value.trim(); if (v) q.set(id === "caller" ? "caller_contains" : id, v); });
      const r = await api("GET", "/api/recordings?" + q.toString());
      showError(r);
      interactions(from, to);
      const items = r.data.items || [];
      $("#count").textContent = items.length + " " + T.results;
      $("#results tbody").replaceChildren(...items.map((rec) => {
        const tr = document.createElement("tr");
        tr.id = "rec-" + rec.id;
        cell(tr, when(rec.started_at));
        cell(tr, rec.caller); cell(tr, operator(rec.agent)); cell(tr, service(rec.service));
        cell(tr, language(rec.language)); cell(tr, clock(rec.duration_s));
        const b = document.createElement("button");
        b.textContent = T.play;
        b.className = "play";
        b.addEventListener("click", () => open(rec));
        tr.appendChild(document.createElement("td")).appendChild(b);
        return tr;
      }));
    });
  }


  // ---- admin: flows, event board, audit ---------------------------------------------------
  function admin() {
    async function flows() {
      const r = await api("GET", "/api/flows");
      $("#flows-version").textContent = r.data.version || "";
    }
    $("#flows-reload").addEventListener("click", async () => {
      const r = await api("POST", "/api/flows/reload");
      const list = $("#flows-errors");
      list.replaceChildren(...(r.data.errors || []).map((err) => {
        const li = document.createElement("li"); li.textContent = err; return li;
      }));
      report($("#flows-result"), r, T.flows_ok + " (" + r.data.version + ")");
      flows();
    });
    async function board() {
      const r = await api("GET", "/api/board");
      const statuses = r.data.statuses || {};
      $("#board tbody").replaceChildren(...(r.data.items || []).map((ev) => {
        const tr = document.createElement("tr");
        tr.id = "event-" + ev.id;
        const lang = body.dataset.lang;
        const title = ev.title && typeof ev.title === "object" ? (ev.title[lang] || ev.title.ja || "") : (ev.title || "");
        cell(tr, title); cell(tr, day(ev.date) + (ev.time ? " " + ev.time : ""));
        const sel = document.createElement("select");
        sel.className = "status";
        Object.entries(statuses).forEach(([id, label]) => {
          const o = document.createElement("option");
          o.value = id;
          o.textContent = (label && typeof label === "object") ? (label[body.dataset.lang] || id) : (label || id);
          o.selected = id === ev.status;
          sel.appendChild(o);
        });
        tr.appendChild(document.createElement("td")).appendChild(sel);
        const b = document.createElement("button");
        b.textContent = T.save;
        b.className = "save";
        b.addEventListener("click", async () => {
          const s = await api("POST", "/api/board/events/" + encodeURIComponent(ev.id) + "/status", { status: sel.value });
          report($("#board-result"), s, T.saved);
          board(); audit();
        });
        tr.appendChild(document.createElement("td")).appendChild(b);
        const spoken = ev.announcements || {};
        const text = cell(tr, spoken[lang] || spoken.ja || "");
        text.className = "announcement";
        const edit = document.createElement("button");
        edit.textContent = T.edit;
        edit.className = "edit";
        edit.addEventListener("click", () => fillEvent(ev));
        tr.appendChild(document.createElement("td")).appendChild(edit);
        return tr;
      }));
      const sel = $("#event-status");
      sel.replaceChildren(...Object.entries(statuses).map(([id, label]) => {
        const o = document.createElement("option");
        o.value = id;
        o.textContent = (label && typeof label === "object") ? (label[body.dataset.lang] || id) : (label || id);
        return o;
      }));
    }
    const form = $("#event-form");
    const pairs = ["title", "venue", "note", "new_venue"];
    function fillEvent(ev) {
      form.reset();
      ["id", "date", "time", "status", "new_date", "new_time"].forEach((k) => { form.elements[k].value = ev[k] || ""; });
      pairs.forEach((k) => ["ja", "en"].forEach((l) => { form.elements[k + "_" + l].value = (ev[k] || {})[l] || ""; }));
      // the API gives aware ISO times; datetime-local wants the wall clock without a zone
      ["publish_from", "publish_until"].forEach((k) => { form.elements[k].value = ev[k] ? ev[k].slice(0, 16) : ""; });
    }
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = form.elements;
      const ev = {};
      ["id", "date", "time", "status", "new_date", "new_time", "publish_from", "publish_until"].forEach((k) => {
        if (f[k].value) ev[k] = f[k].value;
      });
      pairs.forEach((k) => {
        const texts = {};
        ["ja", "en"].forEach((l) => { if (f[k + "_" + l].value) texts[l] = f[k + "_" + l].value; });
        if (Object.keys(texts).length) ev[k] = texts;
      });
      const r = await api("POST", "/api/board/events", ev);
      report($("#board-result"), r, T.saved);
      board(); audit();
    });
    async function audit() {
      // described by the server in the page's language, with names (GET /api/audit: as stored)
      const r = await api("GET", "/api/console/audit?limit=30&lang=" + lang);
      $("#audit tbody").replaceChildren(...(r.data.items || []).map((a) => {
        const tr = document.createElement("tr");
        tr.dataset.action = a.action;
        cell(tr, when(a.at));
        cell(tr, a.actor).dataset.person = "";
        cell(tr, a.action_text); cell(tr, a.detail_text);
        return tr;
      }));
    }
    async function schedules() {
      for (const tr of document.querySelectorAll("#schedules tr[data-service]")) {
        const r = await api("GET", "/api/schedules/" + tr.dataset.service);
        const td = tr.querySelector(".sched-state");
        td.textContent = T["sched_" + r.data.state] || r.data.state || "";
        td.dataset.state = r.data.state || "";
        const ov = r.data.override;
        const until = tr.querySelector(".sched-until");
        const said = ov && ov.message ? Object.values(ov.message).join(" / ") : "";
        until.textContent = ov ? (T["mode_" + ov.mode] || ov.mode) + " — " + (ov.until ? when(ov.until) : T.no_expiry) + (said ? " 「" + said + "」" : "") : "";
        until.dataset.until = ov && ov.until ? ov.until : "";
      }
    }
    $("#emergency-form").addEventListener("submit", (e) => e.preventDefault());
    document.querySelectorAll("#schedules button.override").forEach((b) => b.addEventListener("click", async () => {
      const tr = b.closest("tr");
      const payload = { mode: b.dataset.mode };
      const minutes = tr.querySelector("input.minutes").value.trim();
      if (minutes && b.dataset.mode !== "normal") payload.minutes = Number(minutes);
      if (b.dataset.mode === "emergency") {
        const message = {};
        for (const input of document.querySelectorAll("#emergency-form input")) {
          if (input.value.trim()) message[input.name] = input.value.trim();
        }
        if (Object.keys(message).length) payload.message = message;
      }
      const r = await api("POST", "/api/schedules/" + tr.dataset.service + "/override", payload);
      report($("#sched-result"), r, "");
      schedules(); audit();
    }));
    function showClosures(items) {
      $("#closures tbody").replaceChildren(...items.flatMap((c) => {
        // one row per service, so each can be reopened on its own
        const services = c.services.length ? c.services : ["*"];
        return services.map((svc) => {
          const tr = document.createElement("tr");
          tr.id = "closure-" + c.date + "-" + (svc === "*" ? "all" : svc);
          cell(tr, day(c.date)); cell(tr, c.name); cell(tr, svc === "*" ? T.all_services : service(svc));
          const b = document.createElement("button");
          b.textContent = T.remove;
          b.className = "remove";
          const targets = svc === "*" ? [...document.querySelectorAll("#schedules tr[data-service]")].map((t) => t.dataset.service) : [svc];
          b.addEventListener("click", async () => {
            for (const service of targets) {
              const r = await api("POST", "/api/closures/delete", { date: c.date, service });
              if (!closureResult(r)) break;
            }
            closures(); schedules(); audit();
          });
          tr.appendChild(document.createElement("td")).appendChild(b);
          return tr;
        });
      }));
    }
    function closureResult(r) {
      report($("#closure-result"), r, T.saved);
      $("#closure-errors").replaceChildren(...(r.data.errors || []).map((err) => {
        const li = document.createElement("li"); li.textContent = err; return li;
      }));
      return r.status === 200;
    }
    async function closures() {
      const r = await api("GET", "/api/closures");
      showClosures(r.data.items || []);
    }
    $("#closure-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = e.target.elements;
      const r = await api("POST", "/api/closures", { date: f.date.value, name: f.name.value, service: f.service.value });
      if (closureResult(r)) { showClosures(r.data.items || []); e.target.reset(); }
      schedules(); flows(); audit();
    });
    // hear the announcement of the event as it stands in the form, before saving it
    function formEvent() {
      const f = form.elements;
      const ev = { id: f.id.value || "preview" };
      ["date", "time", "status", "new_date", "new_time"].forEach((k) => { if (f[k].value) ev[k] = f[k].value; });
      pairs.forEach((k) => {
        const texts = {};
        ["ja", "en"].forEach((l) => { if (f[k + "_" + l].value) texts[l] = f[k + "_" + l].value; });
        if (Object.keys(texts).length) ev[k] = texts;
      });
      return ev;
    }
    document.querySelectorAll("#event-form button.preview").forEach((b) => b.addEventListener("click", async () => {
      const r = await api("POST", "/api/tts/preview", { lang: b.dataset.lang, event: formEvent() });
      const player = $("#preview-player");
      if (r.status !== 200) {
        report($("#preview-text"), r, "");
        return;
      }
      report($("#preview-text"), r, r.data.text);
      player.hidden = false;
      player.src = r.data.audio_url;
      player.play().catch(() => {});  // a browser may refuse autoplay: the controls remain
    }));
    flows(); schedules(); closures(); board(); audit();
  }

  const pages = { desk, wallboard, viewer, admin };
  const run = pages[body.dataset.page];
  if (run) run();
})();
