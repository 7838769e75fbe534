// driftbridge web UI: the few behaviours htmx attributes cannot express without eval (the
// Content-Security-Policy allows no eval and no inline script): Escape and focus handling of
// the overlay, styled confirmation dialogs, and local times.
(function () {
  "use strict";

  // --- Local times: <time datetime="ISO"> shows the browser's local time; the ISO value
  // stays in the title (hover). Runs on load and after every htmx swap.
  var formatter = null;
  try {
    formatter = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "short", day: "numeric",
      hour: "2-digit", minute: "2-digit"
    });
  } catch (e) {
    formatter = null;
  }
  function localTimes(root) {
    if (!formatter || !root || !root.querySelectorAll) {
      return;
    }
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var t = times[i];
      if (t.dataset.local === "1") {
        continue;
      }
      var when = new Date(t.getAttribute("datetime"));
      if (isNaN(when.getTime())) {
        continue;
      }
      t.textContent = formatter.format(when);
      t.title = t.getAttribute("datetime");
      t.dataset.local = "1";
    }
  }

  // --- Overlay focus: trapped inside while open; back to the opener when it closes.
  var opener = null;
  function overlayBox() {
    return document.querySelector("#overlay .overlay");
  }
  function focusables(box) {
    return Array.prototype.filter.call(
      box.querySelectorAll("a[href], button:not([disabled]), input:not([disabled]):not([type=hidden]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex='-1'])"),
      function (el) { return el.offsetParent !== null || el === document.activeElement; }
    );
  }
  function trapTab(event, box) {
    var items = focusables(box);
    if (items.length === 0) {
      return;
    }
    var first = items[0];
    var last = items[items.length - 1];
    if (event.shiftKey && (document.activeElement === first || !box.contains(document.activeElement))) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !box.contains(document.activeElement))) {
      event.preventDefault();
      first.focus();
    }
  }

  document.addEventListener("keydown", function (event) {
    var box = overlayBox();
    if (!box) {
      return;
    }
    if (event.key === "Tab") {
      trapTab(event, box);
    } else if (event.key === "Escape") {
      var cancel = box.querySelector("[data-overlay-cancel]");
      if (cancel) {
        event.preventDefault();
        cancel.click();
      }
    }
  });

  document.addEventListener("htmx:beforeRequest", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "overlay" && !overlayBox()) {
      opener = event.detail.elt;
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    localTimes(event.detail && event.detail.elt ? event.detail.elt : document);
    var box = overlayBox();
    if (box) {
      if (!box.contains(document.activeElement)) {
        var auto = box.querySelector("[autofocus]") || focusables(box)[0];
        if (auto) {
          auto.focus();
        }
      }
    } else if (opener) {
      var back = opener;
      opener = null;
      if (document.body.contains(back)) {
        back.focus();
      } else {
        var main = document.querySelector("main h1, body > header h1, main");
        if (main) {
          main.setAttribute("tabindex", "-1");
          main.focus();
        }
      }
    }
  });

  // --- Styled confirmation dialogs instead of the browser's confirm(): any hx-confirm.
  document.addEventListener("htmx:confirm", function (event) {
    var question = event.detail && event.detail.question;
    var dialog = document.getElementById("confirm-dialog");
    if (!question || !dialog || typeof dialog.showModal !== "function") {
      return;
    }
    event.preventDefault();
    var before = document.activeElement;
    document.getElementById("confirm-text").textContent = question;
    var ok = document.getElementById("confirm-ok");
    var cancel = document.getElementById("confirm-cancel");
    var label = event.detail.elt && event.detail.elt.textContent ? event.detail.elt.textContent.trim() : "";
    ok.textContent = label && label.length < 24 ? label : "Confirm";
    function done(confirmed) {
      ok.onclick = null;
      cancel.onclick = null;
      dialog.onclose = null;
      if (dialog.open) {
        dialog.close();
      }
      if (before && document.body.contains(before)) {
        before.focus();
      }
      if (confirmed) {
        event.detail.issueRequest(true);
      }
    }
    ok.onclick = function () { done(true); };
    cancel.onclick = function () { done(false); };
    dialog.onclose = function () { done(false); };
    dialog.showModal();
    cancel.focus();
  });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  } else {
    localTimes(document);
  }
})();
