// liteq dashboard: confirmations for actions and the overview's own refresh. No framework.
"use strict";

// A form with data-confirm asks first; when accepted it says so to the server
// (confirm=1), which otherwise shows its own confirmation page.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (!question) return;
  if (!window.confirm(question)) { event.preventDefault(); return; }
  var field = form.querySelector("input[name=confirm]");
  if (field) field.value = "1";
});

// Elements with data-refresh="SECONDS" are re-read from the same URL every so often
// while the tab is visible.
function refresh(element) {
  var seconds = Number(element.getAttribute("data-refresh")) || 5;
  window.setTimeout(function () {
    if (document.hidden) { refresh(element); return; }
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (text) {
          var fresh = new DOMParser().parseFromString(text, "text/html").getElementById(element.id);
          if (fresh) element.innerHTML = fresh.innerHTML;
        }
      })
      .catch(function () {})
      .then(function () { refresh(element); });
  }, seconds * 1000);
}
document.querySelectorAll("[data-refresh]").forEach(refresh);
