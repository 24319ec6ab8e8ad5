// A little progressive enhancement; every page works without it.
// - data-confirm on a form: ask before sending it.
// - data-copy="id" on a button: copy the field's value.
// - data-refresh="url" and data-interval="seconds" on a region: reload that fragment by itself
//   (the crisis dashboard), announcing nothing but keeping the region's aria-live politeness.
// - data-procedure-url on the request form's panel: show the procedure as the buyer types the
//   estimate (the server decides it), the publicity reference field when the procedure needs it, and
//   the chosen model's CPV while the buyer has not typed another.
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
  function procedure(panel) {
    var form = panel.closest("form");
    var url = panel.getAttribute("data-procedure-url");
    var holder = panel.closest("[data-default-cpv]");
    var defaults = {};
    (holder ? holder.getAttribute("data-default-cpv") : "").split(",").forEach(function (pair) {
      var parts = pair.split("=");
      if (parts.length === 2) { defaults[parts[0]] = parts[1]; }
    });
    var fields = ["nature", "estimation", "budget", "cpv", "article"];
    var cpv = form.elements.cpv;
    var article = form.elements.article;
    var publicity = document.getElementById("champ-reference-publicite");
    var lastDefault = article ? (defaults[article.value] || "") : "";
    var timer = null;
    var sent = 0;
    function update() {
      var params = new URLSearchParams();
      fields.forEach(function (name) { if (form.elements[name]) { params.set(name, form.elements[name].value); } });
      var ticket = ++sent;
      fetch(url + "?" + params.toString(), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.redirected || !response.ok) { throw new Error(String(response.status)); }
          return response.text();
        })
        .then(function (html) {
          if (ticket !== sent) { return; }  // an older answer arriving late
          panel.innerHTML = html;
          var decided = panel.querySelector("[data-procedure]");
          var needed = decided && decided.getAttribute("data-procedure") === "mapa_publicite";
          if (publicity) {
            var typed = form.elements.reference_publicite && form.elements.reference_publicite.value;
            publicity.hidden = !(needed || typed || publicity.querySelector(".field-error"));
          }
          panel.setAttribute("data-refreshed", String(ticket));
        })
        .catch(function () {});
    }
    function later() { window.clearTimeout(timer); timer = window.setTimeout(update, 250); }
    form.addEventListener("input", function (event) {
      if (["estimation", "budget", "cpv"].indexOf(event.target.name) >= 0) { later(); }
    });
    form.addEventListener("change", function (event) {
      if (article && cpv && event.target === article) {
        var next = defaults[article.value] || "";
        if (!cpv.value || cpv.value === lastDefault) { cpv.value = next; }
        lastDefault = next;
      }
      if (fields.indexOf(event.target.name) >= 0) { later(); }
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-refresh]"), refresh);
    Array.prototype.forEach.call(document.querySelectorAll("[data-procedure-url]"), procedure);
    var summary = document.querySelector(".error-summary");
    if (summary) { summary.focus(); }
  });
})();
// - data-commune-suggest="url" on a commune field: a <datalist> of the communes matching what is
//   typed (« Mulhouse (68) », read back by the server as that very commune). Without it the form
//   itself resolves the name, postcode or INSEE code and offers the candidates as radio buttons.
(function () {
  "use strict";
  var count = 0;
  function suggest(input) {
    var url = input.getAttribute("data-commune-suggest");
    var list = document.createElement("datalist");
    list.id = "suggestions-" + (input.id || "commune-" + (++count));
    input.parentNode.appendChild(list);
    input.setAttribute("list", list.id);
    var timer = null;
    var sent = 0;
    var shown = "";
    function update() {
      var typed = input.value.trim();
      if (typed.length < 2 || typed === shown) { return; }
      var ticket = ++sent;
      fetch(url + "?q=" + encodeURIComponent(typed), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (response.redirected || !response.ok) { throw new Error(String(response.status)); }
          return response.json();
        })
        .then(function (body) {
          if (ticket !== sent) { return; }  // an older answer arriving late
          shown = typed;
          list.textContent = "";
          body.items.forEach(function (item) {
            var option = document.createElement("option");
            option.value = item.value;
            option.label = item.department + (item.postcodes.length ? " — " + item.postcodes.join(", ") : "") +
              " — INSEE " + item.insee;
            list.appendChild(option);
          });
        })
        .catch(function () {});
    }
    input.addEventListener("input", function () { window.clearTimeout(timer); timer = window.setTimeout(update, 200); });
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("input[data-commune-suggest]"), suggest);
  });
})();
