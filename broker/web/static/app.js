// A little progressive enhancement; every page works without it.
// - data-confirm on a form: ask before sending it.
// - data-copy="id" on a button: copy the field's value.
// - data-refresh="url" and data-interval="seconds" on a region: reload that fragment by itself
//   (the crisis dashboard), announcing nothing but keeping the region's aria-live politeness.
// - after a failed form post, move focus to the error summary.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) { return; }
    field.select();
    if (navigator.clipboard) { navigator.clipboard.writeText(field.value).catch(function () {}); }
    button.textContent = "Copiée";
  });
  function refresh(region) {
    var url = region.getAttribute("data-refresh");
    var seconds = parseInt(region.getAttribute("data-interval") || "10", 10);
    var stamp = document.getElementById(region.getAttribute("data-stamp") || "");
    function tick() {
      if (document.hidden) { return; }
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.redirected || !response.ok) { throw new Error(String(response.status)); }
          return response.text();
        })
        .then(function (html) {
          region.innerHTML = html;
          if (stamp) { stamp.textContent = new Date().toLocaleTimeString("fr-FR"); }
          region.setAttribute("data-refreshed", String(Date.now()));
        })
        .catch(function () { if (stamp) { stamp.textContent = "mise à jour impossible, nouvel essai bientôt"; } });
    }
    window.setInterval(tick, Math.max(2, seconds) * 1000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-refresh]"), refresh);
    var summary = document.querySelector(".error-summary");
    if (summary) { summary.focus(); }
  });
})();
