// driftbridge web UI: the few behaviours htmx attributes cannot express without eval (the
// Content-Security-Policy allows no eval and no inline script).

// Escape closes an open overlay, as its Cancel button does.
document.addEventListener("keyup", function (event) {
  if (event.key !== "Escape") {
    return;
  }
  var cancel = document.querySelector("#overlay [data-overlay-cancel]");
  if (cancel) {
    cancel.click();
  }
});
