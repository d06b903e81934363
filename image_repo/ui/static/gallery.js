/* The gallery: pages of names from GET /images?limit=&marker=, lazy thumbnails sized for the
 * screen, folders as breadcrumbs, the regex filter. */
"use strict";
(function () {
  const IR = window.IR;
  const PAGE = 120;
  const BOXES = [160, 240, 320, 480, 640]; // few sizes, so thumbnails are shared in the server's cache
  const $ = (id) => document.getElementById(id);
  const grid = $("grid"), more = $("more"), status = $("gallery-status"), crumbs = $("crumbs");
  const regexInput = $("regex"), regexError = $("regex-error");

  let generation = 0, next = null, loading = false, shown = 0, lastFolder = null, folder = "", filtered = false;
  let observer = null, moreObserver = null;

  function thumbBox() {
    const probe = grid.querySelector(".thumb");
    const width = probe ? probe.clientWidth : 160;
    const need = Math.ceil(width * (window.devicePixelRatio || 1));
    return BOXES.find((b) => b >= need) || BOXES[BOXES.length - 1];
  }

  function thumbUrl(name, box) {
    return IR.imageUrl(name, { thumbnail: "true", xsize: box, ysize: box });
  }

  /* Thumbnails load only near the screen: natively when no token is needed, else fetched with it. */
  function loadThumb(img) {
    const url = thumbUrl(img.dataset.name, Number(img.dataset.box));
    IR.showImage(img, url, "read").catch((e) => broken(img, e.message));
  }

  function broken(img, why) {
    const tile = img.closest(".tile");
    if (tile) tile.classList.add("broken");
    img.title = "no preview: " + (why || "the thumbnail did not load");
  }

  function watch(img) {
    if (!IR.tokens.header("read").Authorization) {
      img.loading = "lazy";
      loadThumb(img);
      return;
    }
    if (!observer) {
      observer = new IntersectionObserver((entries) => {
        for (const entry of entries) {
          if (!entry.isIntersecting) continue;
          observer.unobserve(entry.target);
          loadThumb(entry.target);
        }
      }, { rootMargin: "400px" });
    }
    observer.observe(img);
  }

  function folderLink(path, label) {
    const href = "/?" + new URLSearchParams(path ? { regex: IR.folderRegex(path) } : {}).toString();
    return IR.el("a", { href: href === "/?" ? "/" : href, "data-nav": "", text: label });
  }

  /* Breadcrumbs of a folder: every ancestor a link, the folder itself the current page. */
  function renderCrumbs(target, path, current) {
    target.replaceChildren();
    const list = IR.el("ol");
    const parts = path ? path.replace(/\/$/, "").split("/") : [];
    const top = !parts.length && current ? IR.el("span", { "aria-current": "page", text: "All images" })
      : folderLink("", "All images");
    list.append(IR.el("li", {}, top));
    parts.forEach((part, i) => {
      const upTo = parts.slice(0, i + 1).join("/") + "/";
      const last = i === parts.length - 1 && current;
      const item = last ? IR.el("span", { "aria-current": "page", text: part }) : folderLink(upTo, part);
      list.append(IR.el("li", {}, item));
    });
    target.append(list);
  }

  function dirOf(name) { return name.slice(0, name.lastIndexOf("/") + 1); }

  function addNames(names) {
    const added = [];
    for (const name of names) {
      const dir = dirOf(name);
      if (dir !== lastFolder) {
        // A header wherever the folder changes; back in the browsed folder itself, its own name.
        if (lastFolder !== null || dir !== folder) {
          const inner = dir.slice(folder.length);
          grid.append(IR.el("li", { class: "group" }, inner ? folderLink(dir, inner) : IR.el("span", { text: dir || "(top)" })));
        }
        lastFolder = dir;
      }
      const img = IR.el("img", { alt: name, decoding: "async" });
      img.dataset.name = name;
      img.addEventListener("load", () => img.closest(".tile").classList.add("loaded"));
      img.addEventListener("error", () => { if (img.src) broken(img); });
      const link = IR.el("a", { href: "/?" + new URLSearchParams({ image: name }).toString(), "data-nav": "",
                                title: name },
                         IR.el("span", { class: "thumb" }, img),
                         IR.el("span", { class: "caption", text: name.slice(dir === folder ? folder.length : dir.length) }));
      grid.append(IR.el("li", { class: "tile" }, link));
      added.push(img);
      shown += 1;
    }
    const box = thumbBox(); // measured once the tiles are laid out
    for (const img of added) {
      img.dataset.box = String(box);
      watch(img);
    }
  }

  function nextFrom(response) {
    const link = response.headers.get("Link") || "";
    const m = /<([^>]+)>\s*;\s*rel="next"/.exec(link);
    return m ? m[1] : null;
  }

  async function load() {
    if (loading || !next) return;
    loading = true;
    const mine = generation, url = next;
    status.textContent = shown ? "Loading more…" : "Loading…";
    try {
      const response = await IR.request(url, { cache: "no-cache" }); // a listing changes with every upload
      const names = await response.json();
      if (mine !== generation) return;
      next = nextFrom(response);
      addNames(names);
      more.hidden = !next;
      status.textContent = shown === 0 ? (filtered ? "No image names match." : "No images here yet. Drop files on the page to upload some.")
        : next ? "Showing the first " + shown + " images." : shown === 1 ? "Showing the one image." : "Showing all " + shown + " images.";
    } catch (e) {
      if (mine !== generation) return;
      if (e.status === 400 && e.message.startsWith("regex:")) {
        regexError.textContent = e.message;
        regexInput.setAttribute("aria-invalid", "true");
        status.textContent = "";
      } else {
        status.textContent = "Could not list images: " + e.message;
      }
      next = null;
      more.hidden = true;
    } finally {
      if (mine === generation) loading = false;
    }
    // A tall screen may show the end of the first page at once: keep filling it.
    if (next && mine === generation && more.getBoundingClientRect().top < window.innerHeight + 400) load();
  }

  /* Show the names ``regex`` selects (everything when empty). */
  function open(regex) {
    generation += 1;
    loading = false;
    shown = 0;
    lastFolder = null;
    if (observer) { observer.disconnect(); observer = null; }
    for (const img of grid.querySelectorAll("img")) if (img.dataset.objectUrl) URL.revokeObjectURL(img.dataset.objectUrl);
    grid.replaceChildren();
    $("gallery-flash").textContent = "";
    if (regexInput.value !== regex) regexInput.value = regex;
    regexError.textContent = "";
    regexInput.removeAttribute("aria-invalid");
    const browsed = IR.folderOf(regex);
    folder = browsed === null ? "" : browsed;
    filtered = browsed === null;
    if (browsed === null) {
      crumbs.replaceChildren(IR.el("p", { text: "Names matching the filter:" }));
    } else {
      renderCrumbs(crumbs, browsed, true);
    }
    const params = { limit: PAGE };
    if (regex) params.regex = regex;
    next = IR.config.images + "?" + new URLSearchParams(params).toString();
    $("gallery").hidden = false;
    document.title = (browsed ? browsed : browsed === null ? regex : "All images") + " · image_repo";
    load();
  }

  /* Arrow keys move between tiles as in a grid; Home and End go to the first and last. */
  function onKey(event) {
    const links = Array.from(grid.querySelectorAll(".tile > a"));
    const at = links.indexOf(document.activeElement);
    if (at < 0) return;
    const top = links[at].getBoundingClientRect().top;
    const row = links.filter((a) => a.getBoundingClientRect().top === top);
    const columns = Math.max(1, row.length);
    const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: links.length - 1 };
    let to = moves[event.key];
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const x = links[at].getBoundingClientRect().left;
      const step = event.key === "ArrowDown" ? 1 : -1;
      to = at;
      for (let i = at + step; i >= 0 && i < links.length; i += step) {
        const r = links[i].getBoundingClientRect();
        if (r.top !== top && Math.abs(r.left - x) < 2) { to = i; break; }
        if (Math.abs(i - at) > columns * 2 + 2) break;
      }
    }
    if (to === undefined) return;
    event.preventDefault();
    const target = links[Math.max(0, Math.min(links.length - 1, to))];
    target.focus();
    if (event.key === "ArrowDown" && target === links[links.length - 1] && next) load();
  }

  let typing = null;
  function init(navigate) {
    grid.addEventListener("keydown", onKey);
    more.addEventListener("click", load);
    moreObserver = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) load();
    }, { rootMargin: "600px" });
    moreObserver.observe(more);
    $("filter").addEventListener("submit", (event) => {
      event.preventDefault();
      clearTimeout(typing);
      navigate(regexInput.value ? "/?" + new URLSearchParams({ regex: regexInput.value }) : "/");
    });
    regexInput.addEventListener("input", () => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        const value = regexInput.value;
        navigate(value ? "/?" + new URLSearchParams({ regex: value }) : "/", true);
        regexInput.focus();
      }, 500);
    });
  }

  function close() { $("gallery").hidden = true; generation += 1; }

  /* A message about what just happened (a delete), until the gallery shows something else. */
  function flash(text) { $("gallery-flash").textContent = text; }

  window.IR.gallery = { init, open, close, renderCrumbs, flash, folder: () => folder,
                        refresh: () => open(regexInput.value) };
})();
