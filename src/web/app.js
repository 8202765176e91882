// tuanbot dashboard: the only script. Submits the sign-in form on the
// confirmation page and keeps the wish board live by polling its JSON.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var login = document.getElementById("login");
  if (login) { login.submit(); return; }
  var board = document.getElementById("board");
  if (!board) return;
  var url = board.getAttribute("data-live");
  function text(id, v) { var e = document.getElementById(id); if (e) e.textContent = String(v); }
  function rows(id, list, cells) {
    var body = document.getElementById(id);
    if (!body) return;
    while (body.firstChild) body.removeChild(body.firstChild);
    list.forEach(function (item) {
      var tr = document.createElement("tr");
      cells(item).forEach(function (c, i) {
        var td = document.createElement("td");
        td.textContent = String(c.v);
        if (c.num) td.className = "num";
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
  }
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d) return;
        text("n-open", d.open); text("n-claimed", d.claimed);
        text("n-delivered", d.delivered); text("n-total", d.total);
        rows("board-orgs", d.orgs, function (o) {
          return [{ v: o.org }, { v: o.claimed, num: true }, { v: o.delivered, num: true }];
        });
        rows("board-recent", d.recent, function (w) {
          var cells = [{ v: w.no }, { v: w.school + " " + w.grade }, { v: w.child }, { v: w.item }];
          // Staff only: price and note, as the page renders them.
          if (d.full) {
            cells.push({ v: w.price_yuan == null ? "" : "¥" + w.price_yuan, num: true });
            cells.push({ v: w.note == null ? "" : w.note });
          }
          return cells.concat([{ v: w.org }, { v: w.status }]);
        });
      })
      .catch(function () {})
      .then(function () { setTimeout(refresh, 2000); });
  }
  setTimeout(refresh, 2000);
});
