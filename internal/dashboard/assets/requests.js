// ccrelay dashboard, Requests page: the request log (filterable list, a
// detail with the attempt timeline and captured bodies) and body captures.
// Loaded before app.js, which calls these with its helpers (d).
"use strict";
(function () {
  const pages = (window.ccrelayPages = window.ccrelayPages || {});
  const hooks = (window.ccrelayHooks = window.ccrelayHooks || []);
  let selected = null;

  // filters are the page's controls plus #requests?key=..&account=.. links.
  function filters() {
    const f = document.getElementById("req-controls");
    const hash = new URLSearchParams((location.hash.split("?")[1]) || "");
    for (const name of ["key", "account", "model"]) {
      if (hash.has(name)) { f.elements[name].value = hash.get(name); }
    }
    if (hash.has("errors")) f.elements.errors.checked = hash.get("errors") === "true";
    if (hash.toString()) history.replaceState(null, "", "#requests");
    const q = new URLSearchParams({ limit: "100" });
    for (const name of ["key", "account", "model", "since"]) {
      const v = f.elements[name].value.trim();
      if (v) q.set(name, v);
    }
    if (f.elements.errors.checked) q.set("errors", "true");
    return q;
  }

  function statusBadge(d, s) {
    return d.el("span", { class: "badge " + (s >= 500 || s === 0 ? "cooling_down" : s >= 400 ? "disabled" : "ready"), text: s === 0 ? "no answer" : String(s) });
  }

  function trail(d, r) {
    if (r.attempts.length <= 1) return d.el("span", { text: r.account || "–" });
    return r.attempts.map((a, i) => d.el("span", { class: "hop " + (a.verdict === "ok" ? "ok" : "failed"), title: a.reason || a.verdict },
      (i ? "→ " : "") + a.account + (a.verdict === "ok" ? "" : " " + (a.status || "✕"))));
  }

  pages.requests = async function (d) {
    const q = filters();
    const [page, caps] = await Promise.all([d.api("requests?" + q.toString()), d.api("captures")]);
    renderCaptures(d, caps);
    const rows = page.requests.map((r) => d.el("tr", { "data-id": r.id, class: r.id === selected ? "selected" : null, onclick: () => { selected = r.id; detail(d, r.id); } },
      d.el("td", {}, d.el("div", { text: new Date(r.time).toLocaleTimeString() }), d.el("div", { class: "sub", text: d.ago(r.time) })),
      d.el("td", {}, d.el("button", { type: "button", class: "link mono", "data-open": r.id, text: r.id.replace(/^req_/, "").slice(0, 10) + "…" })),
      d.el("td", { text: r.key || "–" }),
      d.el("td", {}, d.el("div", { text: r.model }), r.served_model ? d.el("div", { class: "sub served", title: "model served", text: "→ " + r.served_model }) : null),
      d.el("td", { class: "trail" }, trail(d, r)),
      d.el("td", {}, statusBadge(d, r.status), r.captured ? d.el("span", { class: "sub captured", text: " · bodies" }) : null, r.error ? d.el("div", { class: "sub", text: r.error }) : null),
      d.el("td", { class: "num", text: d.fmtMs(r.ttfb_ms) }),
      d.el("td", { class: "num", text: d.fmtMs(r.latency_ms) })));
    document.querySelector("#requests-table tbody").replaceChildren(...(rows.length ? rows
      : [d.el("tr", {}, d.el("td", { colspan: 8, class: "empty", text: "No requests match." }))]));
    document.getElementById("req-note").textContent = page.requests.length + " newest requests" + (page.scope === "cluster" ? " of every relay of the cluster" : "") +
      (page.scan_stopped ? " · the cluster's log was read as far as one page may: narrow the filters for older ones" : "") + (page.scope_reason ? " · " + page.scope_reason : "");
    if (selected) await detail(d, selected);
  };

  async function detail(d, id) {
    const box = document.getElementById("req-detail");
    let r;
    try {
      r = await d.api("requests/" + encodeURIComponent(id));
    } catch (e) {
      box.replaceChildren(d.el("p", { class: "error", text: e.message }));
      box.hidden = false;
      return;
    }
    for (const tr of document.querySelectorAll("#requests-table tbody tr")) tr.classList.toggle("selected", tr.dataset.id === id);
    const facts = [["Request", r.id], ["Time", new Date(r.time).toLocaleString()], ["Key", r.key || "–"], ["Client", (r.client || "–") + " · " + r.user_agent],
      ["Route", r.route + " (" + r.dialect + ")"], ["Model", r.model], ...(r.served_model ? [["Model served", r.served_model + " on " + r.platform]] : []), ["Status", String(r.status) + (r.error ? " · " + r.error : "")],
      ["Tokens", d.fmtInt(r.input_tokens) + " in · " + d.fmtInt(r.output_tokens) + " out · " + d.fmtInt(r.cache_read_tokens) + " cache read"],
      ["Cost", r.cost_usd === null ? "unknown" : d.fmtUSD(r.cost_usd * 1e6)], ["Timing", "queue " + d.fmtMs(r.queue_ms) + " · first byte " + d.fmtMs(r.ttfb_ms) + " · total " + d.fmtMs(r.latency_ms) + (r.stream ? " · stream" : "")], ...(r.relay ? [["Relay", r.relay]] : [])];
    const dl = d.el("dl", { class: "facts" }, facts.flatMap(([k, v]) => [d.el("dt", { text: k }), d.el("dd", { text: v })]));
    const total = Math.max(1, r.latency_ms, ...r.attempts.map((a) => a.end_ms));
    let start = r.queue_ms || 0;
    const steps = r.attempts.map((a, i) => {
      const seg = d.el("div", { class: "seg " + (a.verdict === "ok" ? "ok" : "failed") });
      seg.style.marginLeft = (100 * start / total).toFixed(1) + "%";
      seg.style.width = Math.max(1, 100 * (a.end_ms - start) / total).toFixed(1) + "%";
      start = a.end_ms;
      return d.el("li", { class: "attempt", "data-account": a.account },
        d.el("div", { class: "attempt-head" }, d.el("strong", { text: (i + 1) + ". " + a.account }), " ", statusBadge(d, a.status), " ",
          d.el("span", { class: "muted", text: a.verdict + " · ended at " + (a.end_ms ? d.fmtMs(a.end_ms) : "< 1 ms") })),
        d.el("div", { class: "timeline" }, seg),
        a.fallback ? d.el("div", { class: "sub", text: "passed over: " + a.fallback }) : null,
        a.target ? d.el("div", { class: "sub", text: "target: " + a.target }) : null,
        a.reason ? d.el("div", { class: "sub", text: "reason: " + a.reason }) : null,
        a.message ? d.el("div", { class: "sub mono", text: "upstream: " + a.message }) : null);
    });
    const kids = [d.el("h2", { text: "Request " + r.id }), dl, d.el("h3", { text: "Attempts" }),
      steps.length ? d.el("ol", { class: "attempts" }, steps) : d.el("p", { class: "muted", text: "Answered by the relay before any account was tried." })];
    if (r.bodies) {
      const b = r.bodies;
      const cut = (t) => (t ? " (cut at the capture's size cap)" : "");
      kids.push(d.el("h3", { text: "Captured bodies" }), d.el("p", { class: "muted small", text: "capture " + b.capture_id + " · deleted " + new Date(b.expires).toLocaleString() + " · secrets replaced by [redacted]" }),
        d.el("details", {}, d.el("summary", { text: "Request header" }), d.el("pre", { class: "body", text: b.request_header })),
        d.el("details", { open: true }, d.el("summary", { text: "Request body" + cut(b.request_truncated) }), d.el("pre", { class: "body", text: b.request })),
        d.el("details", { open: true }, d.el("summary", { text: "Response" + cut(b.response_truncated) }), d.el("pre", { class: "body", text: b.response })));
    } else if (r.captured && r.bodies_on) {
      kids.push(d.el("p", { class: "muted", text: "Bodies were captured on relay " + r.bodies_on + " and stay there: open this request on that relay's dashboard." }));
    } else if (r.captured) {
      kids.push(d.el("p", { class: "muted", text: "Bodies were captured and have since been deleted." }));
    }
    box.replaceChildren(...kids);
    box.hidden = false;
  }

  function describe(c) {
    const parts = [c.key ? "key " + c.key : null, c.account ? "account " + c.account : null, c.errors_only ? "errors" : null].filter(Boolean);
    return (c.key || c.account ? parts.join(" · ") : "every failed request") + (c.sample_rate < 1 ? " · " + Math.round(c.sample_rate * 100) + "% sampled" : "");
  }

  function renderCaptures(d, caps) {
    const now = Date.now();
    const items = caps.captures.map((c) => {
      const on = !c.stopped && Date.parse(c.until) > now;
      return d.el("li", { "data-capture": String(c.id) },
        d.el("span", { class: "badge " + (on ? "cooling_down" : "disabled"), text: on ? "capturing" : "ended" }), " ",
        describe(c) + " · " + d.fmtInt(c.captured) + " stored · " + (on ? "until " + new Date(c.until).toLocaleTimeString() : "bodies kept until " + new Date(Date.parse(c.until) + c.keep_seconds * 1000).toLocaleString()) + " ",
        on ? d.el("button", { type: "button", class: "danger", onclick: () => stop(d, c.id) }, "Stop") : null);
    });
    document.getElementById("captures-list").replaceChildren(...(items.length ? items : [d.el("li", { class: "muted", text: "Body capture is off." })]));
  }

  async function stop(d, id) {
    try { await d.api("captures/" + id + "/stop", { method: "POST" }); d.toast("Capture " + id + " stopped"); } catch (e) { d.toast("Failed: " + e.message); }
    d.refresh();
  }

  async function start(d, ev) {
    ev.preventDefault();
    const f = ev.target;
    const body = { for: f.elements.for.value };
    if (f.elements.key.value.trim()) body.key = f.elements.key.value.trim();
    if (f.elements.account.value.trim()) body.account = f.elements.account.value.trim();
    if (f.elements.errors_only.checked) body.errors_only = true;
    const err = document.getElementById("capture-error");
    try {
      const c = await d.api("captures", { method: "POST", body });
      err.hidden = true;
      d.toast("Capture " + c.id + " on");
    } catch (e) {
      err.textContent = e.message; err.hidden = false;
    }
    d.refresh();
  }

  // The banner on every page while a capture runs.
  hooks.push(async function (d) {
    const caps = await d.api("captures");
    const banner = document.getElementById("capture-banner");
    banner.hidden = !caps.active;
    if (caps.active) {
      const on = caps.captures.filter((c) => !c.stopped && Date.parse(c.until) > Date.now());
      banner.replaceChildren("Body capture is on (" + on.map(describe).join("; ") + "): request and answer bodies are being stored. ",
        d.el("a", { href: "#requests", text: "See captures" }));
    }
  });

  window.ccrelaySetup = window.ccrelaySetup || [];
  window.ccrelaySetup.push(function (d) {
    document.getElementById("req-controls").addEventListener("change", () => d.refresh());
    document.getElementById("req-controls").addEventListener("submit", (ev) => { ev.preventDefault(); d.refresh(); });
    document.getElementById("capture-form").addEventListener("submit", (ev) => start(d, ev));
  });
})();
