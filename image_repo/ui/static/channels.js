/* The channels of a multichannel image: each on or off, its colour, and its window (a two-handle
 * slider from low to high). The deep-zoom view follows them, asking for tiles of the inline
 * rendering (the IIIF quality "channels:0:0000FF:500:4000,..."); "Save as" stores them as a
 * named rendering (PUT ?renderings=NAME), which needs the write token where writes need one. */
"use strict";
(function () {
  const IR = window.IR;
  const $ = (id) => document.getElementById(id);
  const MAX_SHOWN = 16; // the server composites at most this many channels at once
  const PALETTE = ["#0000ff", "#00ff00", "#ff0000", "#ff00ff", "#00ffff", "#ffff00", "#ffffff"];
  const panel = $("channels"), list = $("channel-list"), pick = $("rendering-pick"), says = $("channels-status");
  let rows = [], current = null, follow = null, timer = null, renderings = {};

  function hex(colour) { return colour.replace("#", "").toUpperCase(); }

  function number(v) { return String(Math.round(v)); }

  /* The settings as the server's inline form, channels on only; "" when none is on. */
  function inline() {
    return rows.filter((r) => r.on.checked).slice(0, MAX_SHOWN)
      .map((r) => [r.index, hex(r.colour.value), number(r.low.value), number(r.high.value)].join(":")).join(",");
  }

  function asJson() {
    return { channels: rows.filter((r) => r.on.checked).slice(0, MAX_SHOWN).map((r) => ({
      index: r.index, colour: hex(r.colour.value), low: Number(r.low.value), high: Number(r.high.value) })) };
  }

  function changed() {
    for (const r of rows) r.readout.textContent = number(r.low.value) + " – " + number(r.high.value);
    const text = inline();
    says.textContent = text ? "" : "No channel is on: turn one on to see the image.";
    clearTimeout(timer);
    // A slider sends many inputs while it is dragged: ask for tiles once it rests a moment.
    timer = setTimeout(() => { if (text && follow) follow("channels:" + text); }, 250);
  }

  /* Keep low below high whichever handle moves. */
  function clampPair(r, moved) {
    const low = Number(r.low.value), high = Number(r.high.value);
    if (low < high) return;
    if (moved === r.low) r.low.value = String(Math.max(Number(r.low.min), high - 1));
    else r.high.value = String(Math.min(Number(r.high.max), low + 1));
  }

  function apply(rendering) {
    const by = new Map((rendering.channels || []).map((c) => [c.index, c]));
    for (const r of rows) {
      const c = by.get(r.index);
      r.on.checked = Boolean(c);
      if (c) {
        r.colour.value = "#" + c.colour.toLowerCase();
        r.low.value = String(c.low);
        r.high.value = String(c.high);
      }
    }
  }

  function row(channel, i, shown) {
    const top = channel.dtype === "uint8" ? 255 : 65535;
    const max = Math.max(1, Math.min(top, Math.ceil(channel.max || top)));
    const label = channel.name || "channel " + i;
    const r = { index: channel.index };
    r.on = IR.el("input", { type: "checkbox", id: "channel-on-" + i, checked: Boolean(shown) });
    r.colour = IR.el("input", { type: "color", value: "#" + (shown ? shown.colour : (channel.colour || hex(PALETTE[i % PALETTE.length]))).toLowerCase(),
                                "aria-label": label + " colour" });
    const low = shown ? shown.low : Math.floor(channel["p0.1"] || 0), high = shown ? shown.high : Math.ceil(channel["p99.9"] || max);
    r.low = IR.el("input", { type: "range", min: "0", max: String(max), step: "1", value: String(Math.min(low, max - 1)),
                             class: "low", "aria-label": label + " window low" });
    r.high = IR.el("input", { type: "range", min: "0", max: String(max), step: "1", value: String(Math.min(Math.max(high, low + 1), max)),
                              class: "high", "aria-label": label + " window high" });
    r.readout = IR.el("span", { class: "readout" });
    r.on.addEventListener("change", changed);
    r.colour.addEventListener("input", changed);
    for (const handle of [r.low, r.high]) handle.addEventListener("input", () => { clampPair(r, handle); changed(); });
    const li = IR.el("li", { class: "channel" },
      IR.el("span", { class: "channel-head" }, r.on, IR.el("label", { for: r.on.id, text: label }), r.colour),
      IR.el("span", { class: "window" }, r.low, r.high), r.readout);
    li.dataset.index = String(channel.index);
    return [r, li];
  }

  function fillPick(selected) {
    pick.replaceChildren(...Object.keys(renderings).map((n) => IR.el("option", { value: n, text: n, selected: n === selected })));
  }

  /* Show the panel for ``name`` (its meta=true answer); ``onChange(quality)`` retiles the view. */
  function show(name, meta, onChange) {
    current = name;
    follow = onChange;
    renderings = Object.assign({}, meta.renderings || {});
    const shown = new Map(((renderings.default || {}).channels || []).map((c) => [c.index, c]));
    rows = [];
    list.replaceChildren();
    meta.channels.forEach((channel, i) => {
      const [r, li] = row(channel, i, shown.get(channel.index));
      rows.push(r);
      list.append(li);
    });
    fillPick("default");
    $("rendering-name").value = "";
    $("rendering-save-hint").textContent = IR.config.writeTokens && IR.tokens.missing("write")
      ? "Saving needs the write token (Tokens, above)." : "";
    panel.hidden = false;
    for (const r of rows) r.readout.textContent = number(r.low.value) + " – " + number(r.high.value);
    says.textContent = "";
  }

  function clear() {
    clearTimeout(timer);
    rows = [];
    current = follow = null;
    list.replaceChildren();
    panel.hidden = true;
  }

  async function save(event) {
    event.preventDefault();
    const rname = $("rendering-name").value.trim();
    if (!rname) { says.textContent = "Give the rendering a name first."; return; }
    if (!inline()) { says.textContent = "No channel is on: nothing to save."; return; }
    if (IR.tokens.missing("write") && IR.hooks.unauthorized) {
      IR.hooks.unauthorized("write", "Saving a rendering needs a write token.");
      return;
    }
    try {
      const saved = await IR.json(IR.imageUrl(current, { renderings: rname }), {
        method: "PUT", kind: "write", headers: { "Content-Type": "application/json" }, body: JSON.stringify(asJson()) });
      renderings[saved.name] = saved;
      fillPick(saved.name);
      says.textContent = "Saved as " + saved.name + ": any IIIF viewer can ask for the quality " + saved.quality + ".";
    } catch (e) {
      says.textContent = "Not saved: " + e.message;
    }
  }

  function init() {
    $("rendering-save").addEventListener("submit", save);
    pick.addEventListener("change", () => {
      const chosen = renderings[pick.value];
      if (!chosen) return;
      apply(chosen);
      clearTimeout(timer);
      for (const r of rows) r.readout.textContent = number(r.low.value) + " – " + number(r.high.value);
      if (follow) follow(pick.value);
    });
  }

  window.IR.channels = { init, show, clear, inline };
})();
