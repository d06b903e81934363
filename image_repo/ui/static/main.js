/* The page's routes (?image=NAME, ?regex=R, /), in-page navigation, and the token dialog. */
"use strict";
(function () {
  const IR = window.IR;
  const $ = (id) => document.getElementById(id);

  function route() {
    const params = new URLSearchParams(location.search);
    const image = params.get("image");
    if (image) {
      IR.gallery.close();
      IR.viewer.open(image);
    } else {
      IR.viewer.close();
      IR.gallery.open(params.get("regex") || "");
    }
  }

  function navigate(url, replace) {
    if (replace) history.replaceState(null, "", url); else history.pushState(null, "", url);
    route();
    if (!replace) $("main").focus({ preventScroll: true });
    if (!replace) window.scrollTo(0, 0);
  }

  /* Links marked data-nav change the view without reloading the page (a new tab still works). */
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[data-nav]");
    if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(link.getAttribute("href"));
  });
  window.addEventListener("popstate", route);

  /* -- tokens ---------------------------------------------------------------------------- */
  const dialog = $("token-dialog");
  let afterTokens = null;

  function tokenLabel() {
    const set = ["read", "write"].filter((k) => IR.tokens.get(k));
    $("token-open").textContent = set.length ? "Tokens: " + set.join(" and ") + " set" : "Tokens";
  }

  function askTokens(reason, then) {
    $("token-reason").textContent = reason || "";
    $("token-read-row").hidden = !IR.config.readTokens;
    $("token-write-row").hidden = !IR.config.writeTokens;
    $("token-none").hidden = IR.config.readTokens || IR.config.writeTokens;
    $("token-read").value = IR.tokens.get("read");
    $("token-write").value = IR.tokens.get("write");
    afterTokens = then || null;
    if (!dialog.open) dialog.showModal();
  }

  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "save") {
      IR.tokens.set("read", $("token-read").value.trim());
      IR.tokens.set("write", $("token-write").value.trim());
    } else if (dialog.returnValue === "forget") {
      IR.tokens.set("read", "");
      IR.tokens.set("write", "");
    }
    tokenLabel();
    const then = afterTokens;
    afterTokens = null;
    if (then) then();
    else if (dialog.returnValue === "save" || dialog.returnValue === "forget") route();
  });
  $("token-open").addEventListener("click", () => askTokens(""));

  IR.hooks.unauthorized = (kind, message) => {
    if (dialog.open) { $("token-reason").textContent = message; return; }
    askTokens(kind === "write" ? message + " Enter a write token, then retry." : message);
  };

  /* -- start ----------------------------------------------------------------------------- */
  IR.gallery.init(navigate);
  IR.viewer.init(navigate);
  IR.upload.init(() => { if (!$("gallery").hidden) IR.gallery.refresh(); });
  tokenLabel();
  if (IR.tokens.missing("read")) askTokens("This server needs a read token to show its images.", route);
  else route();
})();
