/* The image page: OpenSeadragon over this server's IIIF info.json (a plain image when deep zoom
 * is unavailable, saying why), metadata, downloads, a temporary URL, delete; for a multichannel
 * image its channels (channels.js), the view retiled with the rendering they make. */
"use strict";
(function () {
  const IR = window.IR;
  const $ = (id) => document.getElementById(id);
  const stage = $("deep-zoom"), plain = $("plain"), notice = $("viewer-notice"), tools = $("zoom-tools");
  const share = $("share"), meta = $("meta"), downloads = $("downloads");
  let viewer = null, current = null, navigate = null, shownInfo = null, latest = null;

  function baseName(name) { return name.slice(name.lastIndexOf("/") + 1); }

  function infoUrl(name) { return IR.config.iiif + "/" + encodeURIComponent(name) + "/info.json"; }

  function closeViewer() {
    if (viewer) { viewer.destroy(); viewer = null; }
    shownInfo = latest = null;
    IR.channels.clear();
    delete stage.dataset.quality;
    stage.replaceChildren();
    stage.hidden = true;
    if (plain.dataset.objectUrl) { URL.revokeObjectURL(plain.dataset.objectUrl); delete plain.dataset.objectUrl; }
    plain.removeAttribute("src");
    plain.hidden = true;
  }

  async function showPlain(name, why) {
    tools.hidden = true;
    const reason = why ? "Deep zoom is unavailable: " + why + ". " : "";
    notice.textContent = reason ? reason + "Showing a plain image instead." : "";
    const dpr = window.devicePixelRatio || 1;
    const box = (n) => String(Math.min(4096, Math.max(1, Math.ceil(n * dpr))));
    const width = stage.parentElement.clientWidth || 800;
    const url = IR.imageUrl(name, { xsize: box(width), ysize: box(Math.max(320, window.innerHeight - 192)) });
    plain.alt = name;
    plain.hidden = false;
    const failed = (message) => { notice.textContent = reason + "The image could not be shown: " + message; };
    plain.onerror = async () => { // an <img> is told no reason: ask again for the server's message
      if (!plain.getAttribute("src") || current !== name) return;
      try { await IR.request(url); failed("the browser could not decode it"); } catch (e) { failed(e.message); }
    };
    try {
      await IR.showImage(plain, url, "read");
    } catch (e) {
      failed(e.message);
    }
  }

  /* OpenSeadragon adds a <style> (hiding the canvas' focus ring on touch screens) unless the page
   * has a style[data-openseadragon-mobile-css]. The CSP refuses every inline style, even an empty
   * one, and the focus ring should stay visible anyway: a marker element named "style" in a
   * namespace of its own matches that selector without being a style sheet. */
  function suppressInlineStyle() {
    if (document.querySelector("style[data-openseadragon-mobile-css]")) return;
    const marker = document.createElementNS("urn:image-repo:marker", "style");
    marker.setAttribute("data-openseadragon-mobile-css", "true");
    document.head.append(marker);
  }

  async function showDeepZoom(name) {
    let info;
    try {
      info = await IR.json(infoUrl(name));
    } catch (e) {
      return showPlain(name, "the IIIF service answered " + (e.status ? e.status + ": " : "") + e.message);
    }
    if (current !== name) return undefined;
    shownInfo = info;
    const auth = IR.tokens.header("read");
    stage.hidden = false;
    tools.hidden = false;
    suppressInlineStyle();
    viewer = window.OpenSeadragon({
      element: stage,
      tileSources: info,
      drawer: "canvas",
      showNavigationControl: false, // our own buttons below: real <button>s, keyboard-operable
      showNavigator: window.innerWidth > 600, // the overview would cover a phone's picture
      navigatorAutoFade: false,
      crossOriginPolicy: false,
      loadTilesWithAjax: Boolean(auth.Authorization),
      ajaxHeaders: auth,
      gestureSettingsMouse: { clickToZoom: false },
    });
    viewer.addHandler("open", () => {
      notice.textContent = "Deep zoom: " + info.width + " × " + info.height + " pixels. Arrow keys pan, + and − zoom, 0 fits.";
      const canvas = stage.querySelector(".openseadragon-canvas");
      if (canvas) {
        canvas.setAttribute("role", "img");
        canvas.setAttribute("aria-label", name + " (deep zoom)");
      }
      stage.dataset.opened = "true";
    });
    viewer.addHandler("open-failed", (event) => {
      const why = event && event.message ? event.message : "the viewer could not open info.json";
      closeViewer();
      showPlain(name, why);
    });
    return undefined;
  }

  /* The same image in another quality (a rendering of its channels): the new tiles are laid over
   * the old ones, which go once the new ones in view have loaded (no black flash between). */
  function retile(quality) {
    if (!viewer || !shownInfo) return;
    const known = (shownInfo.extraQualities || []).concat([quality]); // OpenSeadragon warns of unlisted ones
    viewer.addTiledImage({
      tileSource: Object.assign({}, shownInfo, { tileQuality: quality, extraQualities: known }),
      success: (event) => {
        const item = event.item;
        latest = item;
        const drop = () => {
          if (!viewer || latest !== item) return; // a newer setting is on its way: it drops the rest
          for (let i = viewer.world.getItemCount() - 1; i >= 0; i -= 1) {
            const other = viewer.world.getItemAt(i);
            if (other !== item) viewer.world.removeItem(other);
          }
          stage.dataset.quality = quality;
        };
        if (item.getFullyLoaded()) drop(); else item.addOnceHandler("fully-loaded-change", drop);
      },
    });
  }

  function showMeta(data) {
    meta.replaceChildren();
    for (const [key, value] of Object.entries(data)) {
      let text = typeof value === "object" && value !== null ? JSON.stringify(value) : String(value);
      if (key === "bytes") text = IR.bytes(value) + " (" + value + " bytes)";
      meta.append(IR.el("dt", { text: key }), IR.el("dd", { text }));
    }
  }

  function say(text) { share.textContent = text; }

  function downloadButton(label, url, filename, kind) {
    return IR.el("li", {}, IR.el("button", {
      type: "button", text: label,
      onclick: () => IR.download(url, filename, kind).then(() => say(""), (e) => say("Download failed: " + e.message)),
    }));
  }

  function showDownloads(name, data) {
    const base = baseName(name);
    const key = data && data.key ? data.key : "";
    const ext = key.includes(".") ? key.slice(key.lastIndexOf(".") + 1) : "bin";
    const originalLabel = "Original, as uploaded" + (IR.config.writeTokens ? " (needs the write token)" : "");
    downloads.replaceChildren(downloadButton(originalLabel, IR.imageUrl(name, { original: "true" }), base + "." + ext, "write"));
    for (const kind of IR.config.kinds) {
      downloads.append(downloadButton("Full size " + kind.toUpperCase(), IR.imageUrl(name, { kind }), base + "." + kind, "read"));
    }
  }

  async function copyUrl() {
    if (!IR.config.urls) { say("Temporary URLs need url_key set in the server's configuration."); return; }
    try {
      const answer = await IR.json(IR.imageUrl(current, { url: "true" }));
      const until = new Date(answer.expires * 1000).toLocaleString();
      const field = IR.el("input", { type: "text", readonly: true, value: answer.url, "aria-label": "Temporary URL" });
      share.replaceChildren(field);
      try {
        await navigator.clipboard.writeText(answer.url);
        share.append(IR.el("span", { text: " Copied. Valid until " + until + "." }));
      } catch (e) {
        field.select();
        share.append(IR.el("span", { text: " Valid until " + until + ". Copy it from the field (the browser refused the clipboard)." }));
      }
    } catch (e) {
      say("No temporary URL: " + e.message);
    }
  }

  async function confirmDelete() {
    const dialog = $("delete-dialog");
    $("delete-name").textContent = current;
    dialog.returnValue = "";
    dialog.showModal();
    dialog.addEventListener("close", async () => {
      if (dialog.returnValue !== "delete") return;
      const name = current;
      try {
        await IR.request(IR.imageUrl(name), { method: "DELETE", kind: "write" });
        const folder = name.slice(0, name.lastIndexOf("/") + 1);
        navigate(folder ? "/?" + new URLSearchParams({ regex: IR.folderRegex(folder) }) : "/");
        IR.gallery.flash("Deleted " + name + ".");
      } catch (e) {
        say("Not deleted: " + e.message);
      }
    }, { once: true });
  }

  async function open(name) {
    closeViewer();
    current = name;
    $("viewer").hidden = false;
    $("viewer-title").textContent = name;
    document.title = name + " · image_repo";
    IR.gallery.renderCrumbs($("viewer-crumbs"), name.slice(0, name.lastIndexOf("/") + 1), false);
    notice.textContent = "";
    say("");
    meta.replaceChildren();
    delete stage.dataset.opened;
    let data = null;
    try {
      data = await IR.json(IR.imageUrl(name, { meta: "true" }));
      if (current !== name) return;
      showMeta(data);
    } catch (e) {
      if (current !== name) return;
      meta.replaceChildren(IR.el("dd", { text: "No metadata: " + e.message }));
      if (e.status === 404) { notice.textContent = e.message; tools.hidden = true; return; }
    }
    showDownloads(name, data);
    if (data && Array.isArray(data.channels) && data.channels.length) IR.channels.show(name, data, retile);
    if (!IR.config.deepZoom) return showPlain(name, IR.config.noDeepZoom);
    if (typeof window.OpenSeadragon !== "function") return showPlain(name, "OpenSeadragon did not load");
    return showDeepZoom(name);
  }

  function init(nav) {
    navigate = nav;
    const sizedKind = $("sized-kind");
    for (const kind of IR.config.kinds) sizedKind.append(IR.el("option", { value: kind, text: kind.toUpperCase() }));
    $("sized").addEventListener("submit", (event) => {
      event.preventDefault();
      const xsize = $("sized-w").value, ysize = $("sized-h").value, kind = sizedKind.value;
      const url = IR.imageUrl(current, { xsize, ysize, kind });
      IR.download(url, baseName(current) + "-" + xsize + "x" + ysize + "." + kind, "read")
        .then(() => say(""), (e) => say("Download failed: " + e.message));
    });
    $("copy-url").addEventListener("click", copyUrl);
    IR.channels.init();
    $("delete").addEventListener("click", confirmDelete);
    $("zoom-in").addEventListener("click", () => viewer && viewer.viewport.zoomBy(1.5).applyConstraints());
    $("zoom-out").addEventListener("click", () => viewer && viewer.viewport.zoomBy(1 / 1.5).applyConstraints());
    $("zoom-home").addEventListener("click", () => viewer && viewer.viewport.goHome());
    $("zoom-full").addEventListener("click", () => viewer && viewer.setFullScreen(!viewer.isFullPage()));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !$("viewer").hidden && !document.querySelector("dialog[open]") && !(viewer && viewer.isFullPage())) {
        const folder = current.slice(0, current.lastIndexOf("/") + 1);
        navigate(folder ? "/?" + new URLSearchParams({ regex: IR.folderRegex(folder) }) : "/");
      }
    });
  }

  function close() { closeViewer(); current = null; $("viewer").hidden = true; }

  window.IR.viewer = { init, open, close, osd: () => viewer };
})();
