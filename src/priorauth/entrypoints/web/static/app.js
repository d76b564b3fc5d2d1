// Count each due time down once a minute (the server renders the first value; htmx refreshes
// the worklist's rows every minute as well).
(function () {
  function words(seconds) {
    var over = seconds < 0, left = Math.abs(seconds);
    var d = Math.floor(left / 86400), h = Math.floor((left % 86400) / 3600), m = Math.floor((left % 3600) / 60);
    var text = d ? d + " d " + h + " h" : h ? h + " h " + m + " min" : m + " min";
    return over ? "overdue by " + text : text + " left";
  }
  function tick() {
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var due = Date.parse(el.getAttribute("data-due"));
      if (!isNaN(due)) { el.textContent = words(Math.round((due - Date.now()) / 1000)); }
    });
  }
  setInterval(tick, 60000);
})();
