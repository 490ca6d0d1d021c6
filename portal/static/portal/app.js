// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  // Tells the stylesheet that the narrow-screen nav can be folded (it stays open without JavaScript).
  document.documentElement.classList.add("js");

  document.addEventListener("click", function (event) {
    var target = event.target;

    var dismiss = target.closest("[data-dismiss]");
    if (dismiss) {
      dismiss.closest(".flash").remove();
      return;
    }

    var toggle = target.closest("[data-nav-toggle]");
    if (toggle) {
      var nav = document.getElementById(toggle.getAttribute("aria-controls"));
      var open = nav.classList.toggle("open");
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      return;
    }

    var copy = target.closest("[data-copy]");
    if (copy) {
      var field = document.querySelector(copy.getAttribute("data-copy"));
      var done = function () {
        copy.textContent = "Copied";
        setTimeout(function () { copy.textContent = "Copy"; }, 2000);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done);
      } else {
        field.select();
        document.execCommand("copy");
        done();
      }
      return;
    }

    // A click outside an open dropdown closes it, as people expect of menus.
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      if (!menu.contains(target)) menu.removeAttribute("open");
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.menu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      menu.querySelector("summary").focus();
    });
  });
})();
