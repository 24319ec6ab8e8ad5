// A little progressive enhancement; every page works without it.
// - data-confirm on a form: ask before sending it.
// - data-copy="id" on a button: copy the field's value.
// - data-refresh="url" and data-interval="seconds" on a region: reload that fragment by itself
//   (the crisis dashboard), announcing nothing but keeping the region's aria-live politeness; it
//   stops once a fragment holds [data-refresh-stop] (the call was closed or cancelled meanwhile).
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
    var timer = null;
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
          if (region.querySelector("[data-refresh-stop]")) {
            window.clearInterval(timer);
            if (stamp) { stamp.textContent += " (appel terminé : mise à jour arrêtée, rechargez la page pour la suite)"; }
          }
        })
        .catch(function () { if (stamp) { stamp.textContent = "mise à jour impossible, nouvel essai bientôt"; } });
    }
    timer = window.setInterval(tick, Math.max(2, seconds) * 1000);
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
// - data-quote-deadline on the quote form: say, as the maker types, what the buyer's award rules will
//   flag on the quote (a delivery after the deadline, fewer units than requested), in the very
//   sentences the server says after a post (data-late-text, data-partial-text: a {livraison} or
//   {quantite} hole). The server still decides: it holds such a quote back once for confirmation.
(function () {
  "use strict";
  var MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
    "novembre", "décembre"];
  function isoDay(text) {
    var typed = text.trim();
    var french = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/.exec(typed);
    if (french) { return french[3] + "-" + ("0" + french[2]).slice(-2) + "-" + ("0" + french[1]).slice(-2); }
    return /^\d{4}-\d{2}-\d{2}$/.test(typed) ? typed : "";
  }
  function frenchDay(iso) {
    var parts = iso.split("-");
    var day = parseInt(parts[2], 10);
    return (day === 1 ? "1er" : String(day)) + " " + MONTHS[parseInt(parts[1], 10) - 1] + " " + parts[0];
  }
  function frenchNumber(value) { return String(value).replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f"); }
  function warnings(form) {
    var region = document.getElementById("devis-avertissements");
    if (!region || !form.elements.quantite || !form.elements.livraison) { return; }
    var deadline = form.getAttribute("data-quote-deadline");
    var requested = parseInt(form.getAttribute("data-quote-requested"), 10);
    function update() {
      var found = [];
      var day = isoDay(form.elements.livraison.value);
      if (day && day > deadline) {
        found.push([form.getAttribute("data-late-badge"),
          form.getAttribute("data-late-text").replace("{livraison}", frenchDay(day))]);
      }
      var typed = form.elements.quantite.value.replace(/[\s\u00a0\u202f]/g, "");
      var quantity = /^\d+$/.test(typed) ? parseInt(typed, 10) : 0;
      if (quantity >= 1 && quantity < requested) {
        found.push([form.getAttribute("data-partial-badge"),
          form.getAttribute("data-partial-text").replace("{quantite}", frenchNumber(quantity))]);
      }
      region.textContent = "";
      if (!found.length) { return; }
      var box = document.createElement("div");
      box.className = "notice";
      var intro = document.createElement("p");
      intro.textContent = "Avant d'envoyer ce devis :";
      box.appendChild(intro);
      var list = document.createElement("ul");
      list.className = "list";
      found.forEach(function (item) {
        var line = document.createElement("li");
        var badge = document.createElement("span");
        badge.className = "badge badge-flag";
        badge.textContent = item[0];
        line.appendChild(badge);
        line.appendChild(document.createTextNode(" " + item[1]));
        list.appendChild(line);
      });
      box.appendChild(list);
      region.appendChild(box);
    }
    function typed(event) {
      if (event.target.name === "quantite" || event.target.name === "livraison") { update(); }
    }
    form.addEventListener("input", typed);
    form.addEventListener("change", typed);
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-quote-deadline]"), warnings);
  });
})();
