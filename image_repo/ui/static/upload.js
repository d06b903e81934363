/* Uploads: drag and drop of files and folders or the file inputs; several at once, each with its
 * progress; a SHA-256 from WebCrypto sent along; large files through the direct imports; every
 * failure with the server's own message and a retry that needs no new selection. */
"use strict";
(function () {
  const IR = window.IR;
  const $ = (id) => document.getElementById(id);
  const PARALLEL = 3;
  const DIRECT_FROM = 32 * 1024 * 1024; // larger files go straight to the store when the server offers it
  const queue = $("queue");
  const jobs = [];
  let running = 0, stored = null, refresh = null;

  function stripExtension(path) {
    const m = /^(.*[^/])\.([A-Za-z0-9]+)$/.exec(path);
    return m && IR.config.extensions.includes(m[2].toLowerCase()) ? m[1] : path;
  }

  function cleanDir(dir) {
    const trimmed = dir.trim().replace(/^\/+|\/+$/g, "");
    return trimmed ? trimmed + "/" : "";
  }

  /* One XMLHttpRequest (fetch reports no upload progress); rejects with the server's message. */
  function send(job, method, url, body, headers) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      job.xhr = xhr;
      xhr.open(method, url);
      for (const [name, value] of Object.entries(headers || {})) xhr.setRequestHeader(name, value);
      xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) job.progress(e.loaded / e.total); });
      xhr.addEventListener("load", () => {
        job.xhr = null;
        let parsed = null;
        try { parsed = JSON.parse(xhr.responseText); } catch (e) { /* an empty or non-JSON answer */ }
        if (xhr.status >= 200 && xhr.status < 300) { resolve(parsed); return; }
        const message = parsed && typeof parsed.message === "string" ? parsed.message : xhr.status + " " + xhr.statusText;
        if (xhr.status === 401 && IR.hooks.unauthorized) IR.hooks.unauthorized("write", message);
        reject(new IR.ApiError(xhr.status, message));
      });
      xhr.addEventListener("error", () => {
        job.xhr = null;
        reject(new IR.ApiError(0, "the connection failed before an answer came (server down, or a store that refuses this page's origin)"));
      });
      xhr.addEventListener("abort", () => { job.xhr = null; reject(new IR.ApiError(0, "cancelled")); });
      xhr.send(body);
    });
  }

  async function viaPost(job, sha) {
    const headers = Object.assign({}, IR.tokens.header("write"), sha ? { "X-Checksum-Sha256": sha } : {});
    const url = IR.config.images + "/" + IR.encodePath(job.target);
    if (job.replace) return send(job, "PUT", url, job.file, headers);
    const form = new FormData();
    form.append("file", job.file, job.file.name);
    return send(job, "POST", url, form, headers);
  }

  async function viaImport(job, sha) {
    const json = { "Content-Type": "application/json" };
    const rec = await IR.json("/imports", { method: "POST", kind: "write", headers: json,
      body: JSON.stringify({ name: job.name, sha256: sha, size: job.file.size, replace: job.replace }) });
    if (rec.state === "done") return rec; // these very bytes are stored under this name already
    job.importId = rec.id;
    // A signed URL: it carries its own permission, and our token must not go to a store.
    await send(job, rec.upload_method || "PUT", rec.upload_url, job.file, rec.upload_headers || {});
    job.state("verifying on the server…");
    let state = await IR.json("/imports/" + rec.id, { method: "PUT", kind: "write", headers: json,
                                                      body: JSON.stringify({ complete: true }) });
    while (state.state !== "done" && state.state !== "failed") {
      await new Promise((r) => setTimeout(r, 1000));
      state = await IR.json("/imports/" + rec.id, { kind: "read", cache: "no-store" });
    }
    job.importId = null;
    if (state.state === "failed") throw new IR.ApiError(0, state.reason || "the import failed");
    return state;
  }

  async function run(job) {
    job.begin();
    try {
      const direct = IR.config.direct && (job.file.size > DIRECT_FROM || job.file.size > IR.config.maxUpload);
      if (!direct && job.file.size > IR.config.maxUpload) {
        throw new IR.ApiError(413, "larger than this server takes in one upload (" + IR.bytes(IR.config.maxUpload) +
                                   ", max_upload_bytes), and direct imports are not enabled (they need url_key)");
      }
      job.state("computing its SHA-256…");
      let sha = null, note = "";
      try {
        sha = await IR.sha256(job.file);
      } catch (e) {
        if (direct) throw e;
        note = " (not checksummed: " + e.message + ")";
      }
      job.state("uploading…");
      await (direct ? viaImport(job, sha) : viaPost(job, sha));
      job.succeed(note);
    } catch (e) {
      job.fail(e);
    } finally {
      running -= 1;
      pump();
    }
  }

  function pump() {
    while (running < PARALLEL) {
      const job = jobs.find((j) => j.status === "queued");
      if (!job) break;
      running += 1;
      run(job);
    }
  }

  /* Each stored upload refreshes the gallery (once for several stored close together), not only the
   * last of a batch: an image stored while a larger one still uploads must show at once. */
  function storedOne() {
    clearTimeout(refresh);
    refresh = setTimeout(() => { if (stored) stored(); }, 200);
  }

  function makeJob(file, relPath, dir) {
    const target = dir + relPath.replace(/^\/+/, "");
    const job = { file, target, name: stripExtension(target), status: "queued", replace: false, xhr: null, importId: null };
    const bar = IR.el("progress", { max: "1", value: "0", "aria-label": "Upload of " + job.name });
    const state = IR.el("span", { class: "job-state", text: "waiting" });
    const retry = IR.el("button", { type: "button", text: "Retry", hidden: true });
    const replace = IR.el("button", { type: "button", text: "Replace it", hidden: true });
    const cancel = IR.el("button", { type: "button", text: "Cancel" });
    const link = IR.el("a", { href: "/?" + new URLSearchParams({ image: job.name }), "data-nav": "", text: "Open", hidden: true });
    job.li = IR.el("li", { class: "job" },
      IR.el("span", { class: "job-name", text: job.name }), IR.el("span", { class: "job-size", text: IR.bytes(file.size) }),
      bar, state, IR.el("span", { class: "job-actions" }, link, retry, replace, cancel));
    job.state = (text) => { state.textContent = text; };
    job.progress = (fraction) => { bar.value = fraction; };
    job.begin = () => {
      job.status = "running";
      job.li.className = "job running";
      bar.removeAttribute("value"); // indeterminate while the checksum is computed
      retry.hidden = replace.hidden = true;
      cancel.hidden = false;
    };
    job.succeed = (note) => {
      job.status = "done";
      job.li.className = "job done";
      bar.value = 1;
      job.state("stored" + note);
      cancel.hidden = true;
      link.hidden = false;
      storedOne();
    };
    job.fail = (e) => {
      job.status = e.message === "cancelled" ? "cancelled" : "failed";
      job.li.className = "job failed";
      bar.value = 0;
      job.state(job.status === "cancelled" ? "cancelled" : "failed: " + e.message);
      cancel.hidden = true;
      retry.hidden = false;
      replace.hidden = e.status !== 409;
      if (job.importId) { // leave nothing half-sent behind in the store
        IR.request("/imports/" + job.importId, { method: "DELETE", kind: "write" }).catch(() => {});
        job.importId = null;
      }
    };
    retry.addEventListener("click", () => { job.status = "queued"; job.state("waiting"); pump(); });
    replace.addEventListener("click", () => { job.replace = true; job.status = "queued"; job.state("waiting"); pump(); });
    cancel.addEventListener("click", () => {
      if (job.xhr) job.xhr.abort();
      else if (job.status === "queued") job.fail(new IR.ApiError(0, "cancelled"));
    });
    return job;
  }

  function hidden(relPath) { return relPath.split("/").some((part) => part.startsWith(".")); }

  /* Queue files (with their paths inside a dropped or chosen folder); ``fromFolder`` skips what is not an image. */
  function add(entries, fromFolder) {
    const dir = cleanDir($("upload-dir").value);
    let skipped = 0;
    for (const [file, relPath] of entries) {
      const ext = (relPath.split(".").pop() || "").toLowerCase();
      if (fromFolder && (hidden(relPath) || !IR.config.extensions.includes(ext))) { skipped += 1; continue; }
      const job = makeJob(file, relPath, dir);
      jobs.push(job);
      queue.append(job.li);
    }
    $("upload-hint").textContent = skipped ? "Skipped " + skipped + " files that are hidden or not images by their extension." : "";
    if (IR.tokens.missing("write") && IR.hooks.unauthorized) IR.hooks.unauthorized("write", "Uploads need a write token.");
    pump();
  }

  /* Every file under a dropped directory entry, with its path inside the drop. */
  async function walk(entry, out) {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push([file, entry.fullPath.replace(/^\//, "")]);
      return;
    }
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
      if (!batch.length) break;
      for (const child of batch) await walk(child, out);
    }
  }

  async function onDrop(event) {
    event.preventDefault();
    document.body.classList.remove("dragging");
    open(true);
    const items = Array.from(event.dataTransfer.items || []);
    const entries = items.map((item) => item.webkitGetAsEntry && item.webkitGetAsEntry()).filter(Boolean);
    if (!entries.length) { add(Array.from(event.dataTransfer.files, (f) => [f, f.name]), false); return; }
    const out = [];
    const folder = entries.some((e) => e.isDirectory);
    for (const entry of entries) await walk(entry, out);
    add(out, folder);
  }

  function open(show) {
    const panel = $("uploads"), toggle = $("upload-toggle");
    panel.hidden = !show;
    toggle.setAttribute("aria-expanded", String(show));
    if (show && !$("upload-dir").value) $("upload-dir").value = IR.gallery.folder();
  }

  function init(onStored) {
    stored = onStored;
    $("upload-toggle").addEventListener("click", () => open($("uploads").hidden));
    $("file-input").addEventListener("change", (e) => { add(Array.from(e.target.files, (f) => [f, f.name]), false); e.target.value = ""; });
    $("folder-input").addEventListener("change", (e) => {
      add(Array.from(e.target.files, (f) => [f, f.webkitRelativePath || f.name]), true);
      e.target.value = "";
    });
    document.addEventListener("dragover", (event) => {
      if (!event.dataTransfer || !Array.from(event.dataTransfer.types).includes("Files")) return;
      event.preventDefault();
      document.body.classList.add("dragging");
    });
    document.addEventListener("dragleave", (event) => { if (!event.relatedTarget) document.body.classList.remove("dragging"); });
    document.addEventListener("drop", (event) => { if (event.dataTransfer && event.dataTransfer.files.length) onDrop(event); });
  }

  window.IR.upload = { init, open, jobs };
})();
