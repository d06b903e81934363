/* image_repo browse page: the server's JSON API, tokens and small DOM helpers. No framework.
 * Names only ever reach the page through textContent, attributes and encoded URLs. */
"use strict";
(function () {
  const config = JSON.parse(document.body.dataset.config);
  const STORE = { read: "image_repo.read_token", write: "image_repo.write_token" };

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  /* Tokens live in sessionStorage only: this tab, until it closes. Never in a URL or a cookie. */
  const tokens = {
    get(kind) { return sessionStorage.getItem(STORE[kind]) || ""; },
    set(kind, value) {
      if (value) sessionStorage.setItem(STORE[kind], value); else sessionStorage.removeItem(STORE[kind]);
    },
    /* The header a request needs: a write token for writes; for reads a read token, else the write one. */
    header(kind) {
      const token = kind === "write" ? tokens.get("write") : tokens.get("read") || tokens.get("write");
      const needed = kind === "write" ? config.writeTokens : config.readTokens;
      return needed && token ? { Authorization: "Bearer " + token } : {};
    },
    missing(kind) {
      if (kind === "write") return config.writeTokens && !tokens.get("write");
      return config.readTokens && !tokens.get("read") && !tokens.get("write");
    },
  };

  /* main.js sets hooks.unauthorized: a 401 opens the token dialog with the server's message. */
  const hooks = { unauthorized: null };

  function encodePath(name) { return name.split("/").map(encodeURIComponent).join("/"); }

  function imageUrl(name, params) {
    const query = params ? "?" + new URLSearchParams(params).toString() : "";
    return config.images + "/" + encodePath(name) + query;
  }

  async function messageOf(response) {
    try {
      const body = await response.json();
      if (body && typeof body.message === "string") return body.message;
    } catch (e) { /* not JSON: say what HTTP says */ }
    return response.status + " " + response.statusText;
  }

  /* fetch with the right token; a non-2xx answer throws ApiError carrying the server's own message. */
  async function request(url, options) {
    const opts = Object.assign({ method: "GET", kind: "read" }, options || {});
    const headers = Object.assign({}, tokens.header(opts.kind), opts.headers || {});
    let response;
    try {
      response = await fetch(url, { method: opts.method, headers, body: opts.body, credentials: "omit",
                                    cache: opts.cache || "default" });
    } catch (e) {
      throw new ApiError(0, "the server could not be reached (" + e.message + ")");
    }
    if (!response.ok) {
      const error = new ApiError(response.status, await messageOf(response));
      if (response.status === 401 && hooks.unauthorized) hooks.unauthorized(opts.kind, error.message);
      throw error;
    }
    return response;
  }

  async function json(url, options) { return (await request(url, options)).json(); }

  /* Show an image URL in an <img>: directly when no token is needed, else fetched with the header
   * into an object URL (revoked when the next one replaces it). */
  async function showImage(img, url, kind) {
    const auth = tokens.header(kind || "read");
    if (!auth.Authorization) {
      img.src = url;
      return;
    }
    const blob = await (await request(url, { kind: kind || "read" })).blob();
    if (img.dataset.objectUrl) URL.revokeObjectURL(img.dataset.objectUrl);
    const objectUrl = URL.createObjectURL(blob);
    img.dataset.objectUrl = objectUrl;
    img.src = objectUrl;
  }

  /* Save a URL as a file: a plain link when no token is needed, else fetched with the header. */
  async function download(url, filename, kind) {
    const a = document.createElement("a");
    a.download = filename;
    let objectUrl = null;
    if (tokens.header(kind).Authorization) {
      objectUrl = URL.createObjectURL(await (await request(url, { kind })).blob());
      a.href = objectUrl;
    } else {
      a.href = url;
    }
    document.body.append(a);
    a.click();
    a.remove();
    if (objectUrl) setTimeout(() => URL.revokeObjectURL(objectUrl), 60000);
  }

  /* The literal text of a name in a regex (RE2 and JS agree on these escapes). */
  function escapeRegex(text) { return text.replace(/[\\.^$*+?{}[\]|()]/g, "\\$&"); }

  /* The folder a regex browses ('site1/' for 'site1/.*'), '' for everything, null for any other regex. */
  function folderOf(regex) {
    if (!regex) return "";
    const m = /^((?:[^\\.^$*+?{}[\]|()]|\\[^A-Za-z0-9])+\/)\.\*$/.exec(regex);
    return m ? m[1].replace(/\\(.)/g, "$1") : null;
  }

  function folderRegex(folder) { return folder ? escapeRegex(folder) + ".*" : ""; }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function bytes(n) {
    const units = ["bytes", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
    return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
  }

  /* The SHA-256 of a file as hex, with WebCrypto (only in a secure context: https or localhost). */
  async function sha256(file) {
    if (!(window.crypto && crypto.subtle)) {
      throw new ApiError(0, "this page is not served over HTTPS, so the browser offers no WebCrypto to checksum with");
    }
    let buffer;
    try {
      buffer = await file.arrayBuffer();
    } catch (e) {
      throw new ApiError(0, "the browser could not read " + bytes(file.size) + " at once to checksum it (" + e.message +
                            "); use the image_repo ingest command for files this large");
    }
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buffer));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  window.IR = {
    config, tokens, ApiError, request, json, imageUrl, encodePath, showImage, download, escapeRegex, folderOf,
    folderRegex, el, bytes, sha256, hooks, messageOf,
  };
})();
