// madoguchi console: small page scripts over the JSON API (same-origin, session cookie,
// CSRF token in a header for every state change).
"use strict";
(function () {
  const body = document.body;
  const T = JSON.parse(document.getElementById("i18n").textContent);
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
  function stateText(state) { return T["st_" + state] || state; }
  // the server's reason is English; the page names the kind of error in its own language first
  function failure(r) {
    const kind = T["err_" + r.data.error] || T.error;
    return r.data.message ? kind + ": " + r.data.message : kind + " (" + r.status + ")";
  }
  function showError(r) {
    const el = $("#error");
    if (el) el.textContent = r.status >= 400 ? failure(r) : "";
  }

  // live operator events; reconnects, and tells the page when it is live
  function events(onMessage, onOpen) {
    const badge = $("#ws-state");
    function connect() {
      const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/api/events");
      ws.onopen = () => { if (badge) { badge.textContent = T.live; badge.className = "badge live"; } if (onOpen) onOpen(); };
      ws.onmessage = (m) => onMessage(JSON.parse(m.data));
      ws.onclose = () => { if (badge) { badge.textContent = T.offline; badge.className = "badge"; } setTimeout(connect, 2000); };
    }
    connect();
  }

  // ---- operator desk ---------------------------------------------------------------
  function desk() {
    const agent = body.dataset.agent;
    let current = null;
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
      st.textContent = stateText(a.state) + (a.reason ? " (" + (T["reason_" + a.reason] || a.reason) + ")" : "");
      st.className = "state " + a.state;
      st.dataset.state = a.state;
      $("#call-caller").textContent = a.call ? a.call.caller : "—";
      $("#call-language").textContent = a.call ? (a.call.language || "—") : "—";
      $("#call-service").textContent = a.call ? a.call.service : "—";
      $("#call-topic").textContent = a.call ? (a.call.topic || "—") : "—";
      $("#call-flow").textContent = a.call ? (a.call.flow_path || []).join(" › ") : "—";
      tickWait();
      $("#no-call").hidden = !!a.call;
      if (a.call && $("#record-call").value !== a.call.call_id) {
        // the record form keeps the last call after it ends, so it can be written in wrap-up
        $("#record-call").value = a.call.call_id;
        $("#record-topic").value = a.call.topic || "";
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
    $("#transfer-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!current || !current.call) return;
      const r = await api("POST", "/api/calls/" + current.call.call_id + "/transfer", { target: $("#transfer-target").value });
      showError(r);
    });
    $("#record-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const faq = $("#record-faq").value ? $("#record-faq").value.split(",") : [];
      const payload = { call_id: $("#record-call").value, topic: $("#record-topic").value,
        outcome_class: $("#record-class").value, text: $("#record-text").value, agent_id: agent,
        faq_refs: faq };
      if ($("#record-kind").value) payload.other_kind = $("#record-kind").value;
      const r = await api("POST", "/api/interactions", payload);
      $("#record-result").textContent = r.status === 201 ? T.saved : failure(r);
    });
    $("#lookup").addEventListener("submit", async (e) => {
      e.preventDefault();
      const q = encodeURIComponent($("#lookup-q").value.trim());
      const [dir, faq] = await Promise.all([api("GET", "/api/directory?q=" + q), api("GET", "/api/faq?q=" + q)]);
      $("#directory tbody").replaceChildren(...(dir.data.items || []).map((d) => {
        const tr = document.createElement("tr");
        tr.className = "person";
        cell(tr, d.section); cell(tr, d.name); cell(tr, d.extension); cell(tr, d.note);
        const b = document.createElement("button");
        b.textContent = T.transfer;
        b.className = "transfer";
        // click-to-transfer: the directory's extension goes to the transfer API as is
        b.addEventListener("click", async () => {
          $("#transfer-target").value = d.extension;
          if (!current || !current.call) return;
          const r = await api("POST", "/api/calls/" + current.call.call_id + "/transfer", { target: d.extension });
          showError(r);
        });
        tr.appendChild(document.createElement("td")).appendChild(b);
        return tr;
      }));
      $("#faq tbody").replaceChildren(...(faq.data.items || []).map((f) => {
        const tr = document.createElement("tr");
        tr.className = "faq";
        cell(tr, f.id); cell(tr, f.question); cell(tr, f.answer);
        const b = document.createElement("button");
        b.textContent = T.cite;
        b.addEventListener("click", () => {
          const refs = new Set($("#record-faq").value ? $("#record-faq").value.split(",") : []);
          refs.add(f.id);
          $("#record-faq").value = [...refs].join(",");
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
    // the desk; a slow poll covers a missed event while the socket reconnects
    events((m) => { if (m.type === "agent" && m.agent === agent) load(); }, load);
    setInterval(load, 15000);
    load();
  }

  // ---- supervisor wallboard ----------------------------------------------------------
  function wallboard() {
    const agents = new Map();
    function row(a) {
      const tr = document.createElement("tr");
      tr.id = "agent-" + a.id;
      cell(tr, a.id);
      const st = cell(tr, stateText(a.state) + (a.reason ? " (" + (T["reason_" + a.reason] || a.reason) + ")" : ""));
      st.className = "state " + a.state;
      st.dataset.state = a.state;
      const t = cell(tr, clock(since(a.state_since)));
      t.className = "since";
      t.dataset.since = a.state_since || "";
      cell(tr, a.call ? a.call.caller : "");
      cell(tr, String(a.today ? a.today.calls : 0));
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
    function draw() {
      const tbody = $("#agents tbody");
      tbody.replaceChildren(...[...agents.values()].map(row));
    }
    async function loadAgents() {
      const r = await api("GET", "/api/agents");
      agents.clear();
      (r.data.agents || []).forEach((a) => agents.set(a.id, a));
      draw();
    }
    async function loadQueues() {
      const r = await api("GET", "/api/queues");
      $("#queues tbody").replaceChildren(...(r.data.queues || []).map((q) => {
        const tr = document.createElement("tr");
        tr.id = "queue-" + q.id;
        cell(tr, q.id); cell(tr, String(q.waiting)); cell(tr, clock(q.longest_wait_s));
        return tr;
      }));
    }
    function pct(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + "%"; }
    async function loadKpi() {
      // "today" is the city's day, in Tokyo, whatever the wallboard's own zone
      const today = new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Tokyo" });
      const r = await api("GET", "/api/kpi?from=" + today + "&to=" + today);
      if (r.status !== 200) return;
      const total = r.data.total || {};
      $("#kpi-offered").textContent = String(total.offered || 0);
      $("#kpi-answered").textContent = String(total.answered || 0);
      $("#kpi-abandoned").textContent = String(total.abandoned || 0);
      $("#kpis tbody").replaceChildren(...Object.entries(r.data.targets || {}).map(([name, target]) => {
        const tr = document.createElement("tr");
        tr.id = "kpi-" + name;
        cell(tr, T["kpi_" + name] || name); cell(tr, pct(total[name])); cell(tr, pct(target));
        const met = (total.met || {})[name];
        cell(tr, met === null || met === undefined ? "—" : (met ? "✔" : "✘"));
        return tr;
      }));
    }
    events((m) => {
      if (m.type !== "agent") return;
      // show the change at once, then fetch the full row (call, today's counts)
      const a = agents.get(m.agent) || { id: m.agent };
      agents.set(m.agent, Object.assign({}, a, { state: m.state, reason: m.reason, state_since: m.at }));
      draw();
      loadAgents();
      loadQueues();
      loadKpi();
    }, () => { loadAgents(); loadQueues(); loadKpi(); });
    setInterval(loadKpi, 15000);
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
      // datetime-local has no zone: the browser's own offset makes it an exact instant
      if (!input.value) return "";
      return new Date(input.value).toISOString();
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
      const service = $("#service").value.trim();
      if (service) q.set("service", service);
      const r = await api("GET", "/api/interactions?" + q.toString());
      const agentFilter = $("#agent").value.trim();
      const rows = (r.data.interactions || []).filter((i) => !agentFilter || i.agent_id === agentFilter);
      $("#interactions tbody").replaceChildren(...rows.map((i) => {
        const tr = document.createElement("tr");
        tr.dataset.call = i.call_id;
        cell(tr, new Date(i.call_offered_at).toLocaleString(body.dataset.lang === "ja" ? "ja-JP" : "en-GB"));
        cell(tr, i.agent_id || ""); cell(tr, i.service || ""); cell(tr, i.topic);
        cell(tr, i.outcome_class + (i.other_kind ? " (" + i.other_kind + ")" : "")); cell(tr, i.text);
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
        cell(tr, new Date(rec.started_at).toLocaleString(body.dataset.lang === "ja" ? "ja-JP" : "en-GB"));
        cell(tr, rec.caller); cell(tr, rec.agent || ""); cell(tr, rec.service);
        cell(tr, rec.language || ""); cell(tr, clock(rec.duration_s));
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
      $("#flows-result").textContent = r.status === 200 ? T.flows_ok + " (" + r.data.version + ")" : T.error;
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
        cell(tr, title); cell(tr, ev.date);
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
          $("#board-result").textContent = s.status === 200 ? T.saved : failure(s);
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
      $("#board-result").textContent = r.status === 200 ? T.saved : failure(r);
      board(); audit();
    });
    async function audit() {
      const r = await api("GET", "/api/audit?limit=30");
      $("#audit tbody").replaceChildren(...(r.data.items || []).map((a) => {
        const tr = document.createElement("tr");
        cell(tr, new Date(a.at).toLocaleString()); cell(tr, a.actor); cell(tr, a.action); cell(tr, a.detail || (a.recording_id ? "#" + a.recording_id : ""));
        return tr;
      }));
    }
    const when = (iso) => new Date(iso).toLocaleString(body.dataset.lang === "ja" ? "ja-JP" : "en-GB");
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
      $("#sched-result").textContent = r.status === 200 ? "" : failure(r);
      schedules(); audit();
    }));
    function showClosures(items) {
      $("#closures tbody").replaceChildren(...items.flatMap((c) => {
        // one row per service, so each can be reopened on its own
        const services = c.services.length ? c.services : ["*"];
        return services.map((svc) => {
          const tr = document.createElement("tr");
          tr.id = "closure-" + c.date + "-" + (svc === "*" ? "all" : svc);
          cell(tr, c.date); cell(tr, c.name); cell(tr, svc === "*" ? T.all_services : svc);
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
      $("#closure-result").textContent = r.status === 200 ? T.saved : failure(r);
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
        $("#preview-text").textContent = failure(r);
        return;
      }
      $("#preview-text").textContent = r.data.text;
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
