// A bulk call's progress, live: polls the page's progress JSON and updates the bar and the counts in place.
(function () {
  "use strict";
  var STATUS = { running: "Running", paused: "Paused", completed: "Completed", canceled: "Canceled" };

  function start() {
    var card = document.querySelector("[data-bulk-progress]");
    if (!card || !window.fetch) { return; }
    var url = card.getAttribute("data-bulk-progress");
    var bar = card.querySelector("[data-bulk-bar]");
    var done = card.querySelector("[data-bulk-done]");
    var percent = card.querySelector("[data-bulk-percent]");
    var status = document.querySelector("[data-bulk-status]");

    function apply(data) {
      bar.value = data.percent;
      bar.textContent = data.percent + "%";
      done.textContent = data.done;
      percent.textContent = data.percent;
      if (status && STATUS[data.status]) { status.textContent = STATUS[data.status]; }
      if (data.status === "completed" || data.status === "canceled") {
        // Over: pause, resume and cancel no longer apply.
        document.querySelectorAll("[data-bulk-live]").forEach(function (control) { control.style.display = "none"; });
      }
      Object.keys(data.counts).forEach(function (name) {
        var cell = card.querySelector('[data-count="' + name + '"]');
        if (cell) { cell.textContent = data.counts[name]; }
      });
      return data.status === "running" || data.status === "paused" || data.counts.calling > 0;
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          var again = data ? apply(data) : true;
          if (again) { setTimeout(poll, 1000); }
        })
        .catch(function () { setTimeout(poll, 3000); });
    }
    setTimeout(poll, 1000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
