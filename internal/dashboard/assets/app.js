// ccrelay dashboard: reads and acts only through /admin/v1 with the session
// cookie and the page's CSRF token. No framework, no build step.
"use strict";
(function () {
  const API = "/admin/v1/";
  const POLL_MS = 5000;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (sel, root) => (root || document).querySelector(sel);
  let page = "overview";
  let timer = null;
  let busy = false;

  // ---- helpers -----------------------------------------------------------
  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k.nodeType ? k : document.createTextNode(String(k)));
    return e;
  }
  const fmtInt = (n) => Number(n || 0).toLocaleString("en-US");
  function fmtCompact(n) {
    n = Number(n || 0);
    if (n < 100000) return fmtInt(n);
    if (n < 1e6) return (n / 1e3).toFixed(1).replace(/\.0$/, "") + "k";
    if (n < 1e9) return (n / 1e6).toFixed(2).replace(/\.?0+$/, "") + "M";
    return (n / 1e9).toFixed(2).replace(/\.?0+$/, "") + "B";
  }
  // fmtUSD shows micro-dollars as dollars: cents, four decimals under a
  // cent (so small real costs do not read as $0.00), none from $100.
  function fmtUSD(micros) {
    const d = Number(micros || 0) / 1e6;
    if (d > 0 && d < 0.01) return "$" + d.toFixed(4);
    const digits = d >= 100 ? 0 : 2;
    return "$" + d.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }
  // costKnown: a usage row's cost is known when no request lacked a price.
  const costKnown = (g) => g.cost_usd !== null && g.cost_usd !== undefined;
  function fmtMs(ms) {
    if (!ms) return "–";
    return ms < 10000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s";
  }
  function fmtDur(sec) {
    sec = Math.max(0, Math.round(sec));
    if (sec < 60) return sec + "s";
    if (sec < 3600) return Math.floor(sec / 60) + "m " + (sec % 60) + "s";
    if (sec < 172800) return Math.floor(sec / 3600) + "h " + Math.floor((sec % 3600) / 60) + "m";
    return Math.floor(sec / 86400) + "d " + Math.floor((sec % 86400) / 3600) + "h";
  }
  const ago = (iso) => (iso ? fmtDur((Date.now() - Date.parse(iso)) / 1000) + " ago" : "never");
  const inTime = (iso) => "in " + fmtDur((Date.parse(iso) - Date.now()) / 1000);
  const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const tokens = (t) => (t.input_tokens || 0) + (t.output_tokens || 0) + (t.cache_creation_tokens || 0) + (t.cache_read_tokens || 0);
  function localMidnight() { const d = new Date(); d.setHours(0, 0, 0, 0); return d.toISOString(); }

  // bar draws used against limit; tone fixes the colour (ok, warn, bad),
  // else it turns amber past 80% and red past 95%.
  function bar(label, used, limit, right, extraClass, tone, foot) {
    const share = limit > 0 ? used / limit : 0;
    const cls = tone || (share >= 0.95 ? "bad" : share >= 0.8 ? "warn" : "");
    const fill = el("div", { class: "fill " + cls, role: "presentation" });
    fill.style.width = Math.min(100, Math.max(0, share * 100)).toFixed(1) + "%";
    return el("div", { class: "bar " + (extraClass || ""), role: "meter", "aria-valuemin": "0", "aria-valuemax": String(limit), "aria-valuenow": String(used), "aria-label": label },
      el("div", { class: "bar-head" }, el("span", { text: label }), el("span", { class: "muted", text: right })),
      el("div", { class: "track" }, fill),
      foot ? el("div", { class: "bar-foot muted", text: foot }) : null);
  }

  function toast(msg) {
    const t = $("#toast");
    t.textContent = msg; t.hidden = false;
    clearTimeout(toast.t); toast.t = setTimeout(() => { t.hidden = true; }, 3500);
  }

  async function api(path, opts) {
    opts = opts || {};
    const init = { method: opts.method || "GET", credentials: "same-origin", headers: { Accept: "application/json" } };
    if (init.method !== "GET") {
      init.headers["X-CSRF-Token"] = csrf;
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.body || {});
    }
    const r = await fetch(API + path, init);
    if (r.status === 401) { location.reload(); throw new Error("signed out"); }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error((body.error && body.error.message) || "HTTP " + r.status);
    return body;
  }

  // ---- charts (inline SVG) ----------------------------------------------
  const SVGNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    return e;
  }
  const PALETTE = ["#3b6fd8", "#2f9e8f", "#c48a16", "#8a63d2", "#d0567a", "#5a8f29", "#6b7a90"];

  // barChart draws stacked bars: buckets is [{t: ms, values: [..]}], colors per stack index.
  function barChart(container, buckets, colors, opts) {
    // Drawn at the container's own width, so text is never stretched.
    const W = Math.max(280, Math.round(container.clientWidth || 600)), H = opts.height || 150, L = 44, B = 18, T = 8;
    const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": opts.label });
    const maxV = Math.max(1, ...buckets.map((b) => b.values.reduce((a, v) => a + v, 0)));
    const nice = niceMax(maxV);
    for (let i = 0; i <= 2; i++) {
      const y = T + (H - T - B) * (1 - i / 2);
      s.append(svg("line", { x1: L, x2: W, y1: y, y2: y, class: "grid" }));
      const tx = svg("text", { x: L - 6, y: y + 3, "text-anchor": "end", class: "axis" });
      tx.textContent = fmtCompact((nice * i) / 2);
      s.append(tx);
    }
    const n = buckets.length, bw = (W - L) / Math.max(1, n);
    buckets.forEach((b, i) => {
      let y = H - B;
      b.values.forEach((v, j) => {
        if (!v) return;
        const h = ((H - T - B) * v) / nice;
        y -= h;
        const r = svg("rect", { x: L + i * bw + bw * 0.12, y: y, width: Math.max(1, bw * 0.76), height: h, fill: colors[j % colors.length], rx: 1 });
        const tt = svg("title"); tt.textContent = opts.title(b, j, v); r.append(tt);
        s.append(r);
      });
    });
    const ticks = Math.min(W < 420 ? 3 : 6, n);
    for (let i = 0; i < ticks; i++) {
      const idx = Math.floor((i * (n - 1)) / Math.max(1, ticks - 1));
      const anchor = i === 0 ? "start" : i === ticks - 1 ? "end" : "middle";
      const x = i === 0 ? L + idx * bw : i === ticks - 1 ? L + (idx + 1) * bw : L + idx * bw + bw / 2;
      const tx = svg("text", { x, y: H - 4, "text-anchor": anchor, class: "axis" });
      tx.textContent = opts.tick(buckets[idx].t);
      s.append(tx);
    }
    if (!buckets.some((b) => b.values.some((v) => v))) {
      const tx = svg("text", { x: (W + L) / 2, y: H / 2, "text-anchor": "middle", class: "empty" });
      tx.textContent = "no traffic in this window";
      s.append(tx);
    }
    container.replaceChildren(s);
  }
  function niceMax(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  // bucketize fills every step of [since, until] (so gaps show as empty
  // bars) with width values each; add(values, point) adds a point's share.
  function bucketize(series, width, add) {
    const step = series.step_seconds * 1000;
    const start = Math.floor(Date.parse(series.since) / step) * step;
    const end = Date.parse(series.until);
    const out = [], at = new Map();
    for (let t = start; t <= end; t += step) { const b = { t, values: new Array(width).fill(0) }; at.set(t, b); out.push(b); }
    for (const p of series.points) {
      const b = at.get(Date.parse(p.start));
      if (b) add(b.values, p);
    }
    return out;
  }

  // ---- pages -------------------------------------------------------------
  function stat(id, label, value, unit, sub) {
    return el("div", { class: "stat", id },
      el("div", { class: "label", text: label }),
      el("div", { class: "value" }, el("span", { class: "v", text: value }), unit ? el("span", { class: "unit", text: unit }) : null),
      sub ? el("div", { class: "sub", text: sub }) : null);
  }

  async function overview() {
    const [health, hour, day, today] = await Promise.all([
      api("health"),
      api("usage/series?since=1h&step=60s"),
      api("usage/series?since=24h&step=1h"),
      api("usage?since=" + encodeURIComponent(localMidnight())),
    ]);
    let req = 0, errs = 0;
    for (const p of hour.points) { req += p.requests; errs += p.errors; }
    const lastMin = hour.points.filter((p) => Date.parse(p.start) >= Date.now() - 60000).reduce((a, p) => a + p.requests, 0);
    const acc = health.accounts;
    const total = Object.values(acc).reduce((a, v) => a + v, 0);
    const t = today.total || {};
    const seen = "as of " + new Date(health.time).toLocaleTimeString();
    $("#ov-cards").replaceChildren(
      stat("ov-rps", "Requests per second", (req / 3600).toFixed(req / 3600 >= 10 ? 0 : 2), "req/s", fmtInt(req) + " in the last hour · " + fmtInt(lastMin) + " last minute"),
      stat("ov-errors", "Errors", fmtInt(errs), errs === 1 ? "error" : "errors", "last hour · " + (req ? ((100 * errs) / req).toFixed(1) : "0") + "% of requests"),
      stat("ov-inflight", "In flight now", fmtInt(health.relay.in_flight || 0), "requests", "streams included · " + seen),
      stat("ov-tokens", "Tokens today", fmtInt(tokens(t)), "tokens", fmtInt(t.input_tokens) + " in · " + fmtInt(t.output_tokens) + " out · " + fmtInt((t.cache_read_tokens || 0) + (t.cache_creation_tokens || 0)) + " cache"),
      stat("ov-cost", "Cost today", costKnown(t) ? fmtUSD(t.cost_micros) : "–", "",
        costKnown(t) ? "at list prices" : fmtInt(t.cost_unknown_requests) + " requests without a known price"),
      stat("ov-requests-today", "Requests today", fmtInt(t.requests), "requests", fmtInt(t.errors) + " errors"));
    barChart($("#ov-chart-rpm"), bucketize(hour, 2, (v, p) => { v[0] += p.requests - p.errors; v[1] += p.errors; }),
      ["var(--accent)", "var(--bad)"].map(cssVar), { label: "requests per minute, last hour", tick: (t) => clock(t), title: (b, j, v) => clock(b.t) + ": " + fmtInt(v) + (j ? " errors" : " ok") });
    barChart($("#ov-chart-tokens"), bucketize(day, 2, (v, p) => { v[0] += p.input_tokens + p.cache_creation_tokens + p.cache_read_tokens; v[1] += p.output_tokens; }),
      ["var(--accent)", "#2f9e8f"].map(cssVar), { label: "tokens per hour, last 24 hours", tick: (t) => clock(t), title: (b, j, v) => clock(b.t) + ": " + fmtInt(v) + (j ? " output" : " input and cache") + " tokens" });
    const pool = el("div", { class: "pool" },
      bar("Available", acc.ready, total, acc.ready + " of " + total, "pool-ready", "ok"),
      bar("Cooling down", acc.cooling_down, total, acc.cooling_down + " of " + total, "pool-cooling", "warn"),
      bar("Failed (token invalid)", acc.token_invalid, total, acc.token_invalid + " of " + total, "pool-failed", "bad"),
      bar("Disabled", acc.disabled, total, acc.disabled + " of " + total, "pool-disabled", "muted"));
    const db = health.relay.database || "ok";
    $("#ov-pool").replaceChildren(pool, el("p", { class: "muted small", text: `Database ${db} · usage queue ${fmtInt(health.relay.usage_queue || 0)} · ${fmtInt(health.sessions)} sticky sessions · version ${health.relay.version || "?"}` + (health.relay.cluster ? " · cluster " + health.relay.cluster : "") }));
  }
  function cssVar(v) {
    const m = /^var\((--[a-z-]+)\)$/.exec(v);
    return m ? getComputedStyle(document.documentElement).getPropertyValue(m[1]).trim() || v : v;
  }

  async function accounts() {
    const data = await api("accounts");
    const rows = data.accounts.map((a) => {
      const windows = a.quota ? a.quota.windows : [];
      const quota = windows.length
        ? windows.map((q) => bar(q.name, q.utilization * 100, 100, Math.round(q.utilization * 100) + "%" + (q.stale ? " · stale" : q.resets_at ? " · resets " + inTime(q.resets_at) : "")))
        : el("span", { class: "muted small", text: "no quota reported" });
      const cds = a.cooldowns.map((c) => el("div", { class: "sub", text: (c.model ? c.model + ": " : "") + c.kind + " " + inTime(c.until) + (c.reason ? " — " + c.reason : "") }));
      const label = { ready: "ready", cooling_down: "cooling down", disabled: "disabled", token_invalid: "token invalid" }[a.state] || a.state;
      const off = a.disabled;
      const actions = el("div", { class: "actions" },
        el("button", { type: "button", "data-action": "reset", "data-id": a.id, disabled: a.cooldowns.length === 0, onclick: () => act("accounts/" + encodeURIComponent(a.id) + "/reset", "Cooldowns of " + a.id + " cleared") }, "Reset"),
        off ? el("button", { type: "button", "data-action": "enable", "data-id": a.id, onclick: () => act("accounts/" + encodeURIComponent(a.id) + "/enable", a.id + " enabled") }, "Enable")
          : el("button", { type: "button", class: "danger", "data-action": "disable", "data-id": a.id, disabled: !a.enabled, onclick: () => act("accounts/" + encodeURIComponent(a.id) + "/disable", a.id + " disabled") }, "Disable"));
      return el("tr", { "data-id": a.id },
        el("td", {}, el("div", { text: a.name || a.id }), el("div", { class: "sub", text: a.id + " · " + a.type + " · priority " + a.priority + (a.groups.length ? " · " + a.groups.join(", ") : "") })),
        el("td", { class: "state" }, el("span", { class: "badge " + a.state, text: label }), cds, a.state !== "cooling_down" && a.detail && !a.cooldowns.length ? el("div", { class: "sub", text: a.detail }) : null),
        el("td", {}, quota),
        el("td", { class: "num" }, el("div", { class: "today-requests", text: fmtInt(a.today.requests) + " req" }), el("div", { class: "sub today-tokens", text: fmtInt(tokens(a.today)) + " tokens" })),
        el("td", { class: "last-used", text: ago(a.last_used) }),
        el("td", {}, a.last_error ? [el("div", { text: a.last_error.kind }), el("div", { class: "sub", text: (a.last_error.reason || "") + " · " + ago(a.last_error.at) }),
          el("a", { class: "small", href: "#requests?account=" + encodeURIComponent(a.id), "data-requests": a.id, text: "its requests" })] : el("span", { class: "muted", text: "none" })),
        el("td", {}, actions));
    });
    $("#accounts-table tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "empty", text: "No accounts configured." }))]));
    $("#acct-note").textContent = data.accounts.length + " accounts · as of " + new Date(data.time).toLocaleTimeString();
  }

  async function keys() {
    const data = await api("keys");
    const named = data.keys.filter((k) => k.source === "keys");
    $("#keys-note").textContent = data.named
      ? (named.length ? named.length + " named " + (named.length === 1 ? "key" : "keys") + " · as of " + new Date().toLocaleTimeString() : "No named keys yet: create one below. Keys from api_keys are shown by position and last 4 characters.")
      : "Keys from api_keys, shown by position and last 4 characters. Limits and budgets come with named [[keys]].";
    $("#key-create").hidden = !data.named;
    const rows = data.keys.map((k) => {
      const path = "keys/" + encodeURIComponent(k.name);
      const action = k.source !== "keys" ? null : k.enabled
        ? el("button", { type: "button", class: "danger", "data-action": "disable", "data-name": k.name, onclick: () => keyAct(path + "/disable", k.name + " disabled") }, "Disable")
        : el("button", { type: "button", "data-action": "enable", "data-name": k.name, onclick: () => keyAct(path + "/enable", k.name + " enabled") }, "Enable");
      const busyNow = [k.in_flight ? fmtInt(k.in_flight) + " in flight" : null, k.queued ? fmtInt(k.queued) + " queued" : null].filter(Boolean).join(" · ");
      const cost = k.cost_today_micros === null || k.cost_today_micros === undefined ? "–" : fmtUSD(k.cost_today_micros);
      return el("tr", { "data-name": k.name },
        el("td", {}, el("div", { text: k.name }), el("div", { class: "sub mono", text: k.last4 ? "…" + k.last4 : k.source === "keys" ? "stored as sha256" : "" }),
          k.source === "keys" ? el("a", { class: "small", href: "#requests?key=" + encodeURIComponent(k.name), "data-requests": k.name, text: "requests" }) : null),
        el("td", { class: "state" }, el("span", { class: "badge " + (k.enabled ? "ready" : "disabled"), text: k.enabled ? "enabled" : "disabled" }),
          k.expires_at ? el("div", { class: "sub", text: "expires " + new Date(k.expires_at).toLocaleDateString() }) : null,
          busyNow ? el("div", { class: "sub", text: busyNow }) : null),
        el("td", { class: "small" }, [k.rpm ? k.rpm + " req/min" : null, k.concurrency ? k.concurrency + " concurrent" : null, k.models && k.models.length ? "models " + k.models.join(", ") : null,
          k.groups && k.groups.length ? "groups " + k.groups.join(", ") : null].filter(Boolean).join(" · ") || el("span", { class: "muted", text: "none" })),
        el("td", { class: "budgets" }, k.budgets.length ? k.budgets.map((b) => bar(b.window + " " + (b.unit === "usd" ? "budget" : "tokens"), b.used, b.limit,
          b.unit === "usd" ? fmtUSD(b.used * 1e6) + " of " + fmtUSD(b.limit * 1e6) : fmtCompact(b.used) + " of " + fmtCompact(b.limit),
          "budget-" + b.window + "-" + b.unit, null, b.resets_at ? "resets " + inTime(b.resets_at) : null)) : el("span", { class: "muted small", text: "none" })),
        el("td", { class: "num key-requests", "data-label": "Requests today", text: fmtInt(k.today.requests) }),
        el("td", { class: "num key-tokens", "data-label": "Tokens today", text: fmtInt(tokens(k.today)) }),
        el("td", { class: "num key-cost", "data-label": "Cost today", "data-micros": k.cost_today_micros === null || k.cost_today_micros === undefined ? null : String(k.cost_today_micros), text: cost }),
        el("td", { "data-label": "Last used", text: k.last_used ? ago(k.last_used) : "–" }),
        el("td", {}, action ? el("div", { class: "actions" }, action) : null));
    });
    $("#keys-table tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 9, class: "empty", text: "No relay keys: auth is off, usage is recorded as anonymous." }))]));
  }

  // keyAct disables or enables a key; a failure is said on the page, next
  // to the table, until the next action.
  async function keyAct(path, done) {
    const err = $("#keys-error");
    err.hidden = true;
    try {
      const res = await api(path, { method: "POST" });
      toast(done + (res.applied ? "" : " in the config file; " + (res.reload_error || "it applies at the next reload")));
    } catch (e) {
      err.textContent = "Could not change the key: " + e.message;
      err.hidden = false;
    }
    refresh();
  }

  function numField(id) {
    const v = $(id).value.trim();
    return v === "" ? 0 : Number(v);
  }
  const listField = (id) => $(id).value.split(",").map((x) => x.trim()).filter(Boolean);

  async function createKey(ev) {
    ev.preventDefault();
    const err = $("#key-form-error"), submit = $("#key-submit");
    err.hidden = true;
    const body = {
      name: $("#k-name").value.trim(), models: listField("#k-models"), groups: listField("#k-groups"),
      rpm: numField("#k-rpm"), concurrency: numField("#k-concurrency"),
      daily_usd: numField("#k-daily-usd"), weekly_usd: numField("#k-weekly-usd"), monthly_usd: numField("#k-monthly-usd"),
      daily_tokens: numField("#k-daily-tokens"), hash_only: $("#k-hash-only").checked,
    };
    submit.disabled = true;
    try {
      const res = await api("keys", { method: "POST", body });
      $("#key-form").reset();
      $("#key-create").open = false;
      $("#new-key-name").textContent = res.name;
      $("#new-key-value").value = res.key;
      $("#new-key-status").textContent = res.applied ? "The relay has reloaded its config with it." : "Written to the config file; " + (res.reload_error || "it applies at the next reload.");
      $("#new-key").hidden = false;
      $("#new-key").focus();
      $("#new-key-value").select();
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
      $("#k-name").focus();
    } finally {
      submit.disabled = false;
    }
    refresh();
  }

  async function copyKey() {
    const input = $("#new-key-value"), status = $("#new-key-status");
    try {
      if (navigator.clipboard && window.isSecureContext) await navigator.clipboard.writeText(input.value);
      else { input.select(); if (!document.execCommand("copy")) throw new Error("copy refused"); }
      status.textContent = "Copied to the clipboard.";
    } catch (e) {
      input.select();
      status.textContent = "Could not copy: the key is selected, copy it with Ctrl+C (⌘C).";
    }
  }

  // hideNewKey removes the key from the page: it is not shown again.
  function hideNewKey() {
    $("#new-key-value").value = "";
    $("#new-key").hidden = true;
    $("#key-create summary").focus();
  }

  async function usage() {
    const f = $("#usage-controls");
    const since = f.since.value, step = f.step.value, by = f.by.value;
    const byName = f.by.selectedOptions[0].textContent;
    const [series, report] = await Promise.all([
      api(`usage/series?since=${since}&step=${step}&by=${by}`),
      api(`usage?since=${since}&by=${by}`),
    ]);
    const groups = report.groups.map((g) => g.name || "");
    const top = groups.slice(0, PALETTE.length - 1);
    const other = groups.length > top.length;
    const names = other ? [...top, "other"] : top;
    const buckets = bucketize(series, names.length, (v, p) => {
      let i = top.indexOf(p.group || "");
      if (i < 0) i = names.length - 1;
      if (i >= 0) v[i] += tokens(p);
    });
    const daily = step === "24h";
    const tick = (t) => (daily ? new Date(t).toLocaleDateString([], { month: "short", day: "numeric" }) : since === "24h" ? clock(t) : new Date(t).toLocaleDateString([], { month: "short", day: "numeric" }) + " " + clock(t));
    barChart($("#usage-chart"), buckets, PALETTE, { height: 220, label: "tokens over time by " + byName, tick, title: (b, j, v) => tick(b.t) + " · " + names[j] + ": " + fmtInt(v) + " tokens" });
    $("#usage-legend").replaceChildren(...names.map((n, i) => { const sw = el("i"); sw.style.background = PALETTE[i]; return el("span", {}, sw, n || "(none)"); }));
    $("#usage-chart-note").textContent = "per " + (daily ? "day" : "hour") + " · all token kinds";
    $("#usage-by-head").textContent = byName[0].toUpperCase() + byName.slice(1);
    const row = (name, g, cls) => el("tr", { class: cls || "", "data-name": name },
      el("td", { text: name }), el("td", { class: "num requests", text: fmtInt(g.requests) }), el("td", { class: "num errors", text: fmtInt(g.errors) }),
      el("td", { class: "num input", text: fmtInt(g.input_tokens) }), el("td", { class: "num output", text: fmtInt(g.output_tokens) }),
      el("td", { class: "num", text: fmtInt(g.cache_creation_tokens) }), el("td", { class: "num", text: fmtInt(g.cache_read_tokens) }),
      el("td", { class: "num cost", "data-micros": costKnown(g) ? String(g.cost_micros) : null, title: costKnown(g) ? null : fmtInt(g.cost_unknown_requests) + " requests without a known price", text: costKnown(g) ? fmtUSD(g.cost_micros) : "–" }),
      el("td", { class: "num p50", title: g.latency_sample ? "over this relay's latest " + fmtInt(g.latency_sample) + " successful requests" : null, text: fmtMs(g.latency_p50_ms) }),
      el("td", { class: "num p95", title: g.latency_sample ? "over this relay's latest " + fmtInt(g.latency_sample) + " successful requests" : null, text: fmtMs(g.latency_p95_ms) }));
    const rows = report.groups.map((g) => row(g.name || "(none)", g));
    $("#usage-table tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 10, class: "empty", text: "No requests in this window." }))]));
    $("#usage-table tfoot").replaceChildren(row("Total", report.total || {}, "total"));
  }

  async function sessions() {
    const data = await api("sessions");
    const rows = data.sessions.map((s) => el("tr", { "data-key": s.key },
      el("td", { class: "mono", text: s.key }), el("td", { class: "relay-key", text: s.relay_key || "–" }),
      el("td", { class: "model", text: s.model || "–" }), el("td", { text: s.account }),
      el("td", { class: "last-turn", title: s.last_turn ? new Date(s.last_turn).toLocaleString() : "not known since the relay restarted", text: s.last_turn ? ago(s.last_turn) + " · " + clock(s.last_turn) : "–" }),
      el("td", { text: inTime(s.expires_at) + " · " + clock(s.expires_at) }),
      el("td", {}, el("div", { class: "actions" }, el("button", { type: "button", onclick: () => act("sessions/clear", "Session cleared", { key: s.key }) }, "Clear")))));
    $("#sessions-table tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 7, class: "empty", text: "No sticky sessions." }))]));
    $("#sessions-clear-all").disabled = rows.length === 0;
  }

  async function act(path, done, body) {
    try {
      await api(path, { method: "POST", body });
      toast(done);
    } catch (e) {
      toast("Failed: " + e.message);
    }
    refresh();
  }

  // Pages and hooks of other files (requests.js) get these helpers.
  const helpers = { api, el, fmtInt, fmtMs, fmtUSD, ago, toast, refresh: () => refresh() };
  const pagesByName = { overview, accounts, keys, usage, sessions, ...(window.ccrelayPages || {}) };
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      await Promise.all([pagesByName[page](helpers), ...(window.ccrelayHooks || []).map((h) => h(helpers).catch(() => {}))]);
      $("#status").textContent = "updated " + new Date().toLocaleTimeString() + " · every " + POLL_MS / 1000 + " s";
      document.body.dataset.loaded = page;
    } catch (e) {
      $("#status").textContent = "update failed: " + e.message;
    } finally {
      busy = false;
    }
  }

  function show() {
    const want = (location.hash || "#overview").slice(1).split("?")[0];
    page = pagesByName[want] ? want : "overview";
    if (page !== "keys") { $("#new-key-value").value = ""; $("#new-key").hidden = true; }
    delete document.body.dataset.loaded;
    for (const s of document.querySelectorAll("main > section")) s.hidden = s.dataset.page !== page;
    for (const a of document.querySelectorAll(".top nav a")) {
      if (a.dataset.page === page) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
    }
    refresh();
  }

  window.addEventListener("hashchange", () => { show(); $("#main").focus(); });
  $("#usage-controls").addEventListener("change", refresh);
  $("#key-form").addEventListener("submit", createKey);
  $("#k-name").addEventListener("input", () => { $("#key-form-error").hidden = true; });
  $("#new-key-copy").addEventListener("click", copyKey);
  $("#new-key-done").addEventListener("click", hideNewKey);
  $("#sessions-clear-all").addEventListener("click", () => {
    if (confirm("Clear every sticky session?")) act("sessions/clear", "All sessions cleared", {});
  });
  for (const setup of window.ccrelaySetup || []) setup(helpers);
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refresh(); });
  show();
  timer = setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
})();
