// Make-up signature pad: finger, pen or mouse on a canvas (Pointer Events, or Touch Events where a
// browser has no Pointer Events), sent as a PNG data URL.
(function () {
  "use strict";
  var canvas = document.getElementById("pad");
  if (!canvas) { return; }
  var form = document.getElementById("sign-form");
  var field = document.getElementById("signature-data");
  var submit = document.getElementById("submit-signature");
  var confirmBox = form.querySelector("input[name=confirm]");
  var ctx = canvas.getContext("2d");
  var drawing = false, inked = false, last = null;

  function reset() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#d0d5dd";
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(24, canvas.height - 48);
    ctx.lineTo(canvas.width - 24, canvas.height - 48);
    ctx.stroke();
    inked = false;
    update();
  }
  function pos(e) {
    var r = canvas.getBoundingClientRect();
    return { x: (e.clientX - r.left) * canvas.width / r.width, y: (e.clientY - r.top) * canvas.height / r.height };
  }
  function update() { submit.disabled = !(inked && confirmBox.checked); }
  function start(p) { drawing = true; last = p; }
  function move(p) {
    if (!drawing) { return; }
    ctx.strokeStyle = "#111";
    ctx.lineWidth = 4;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
    last = p;
    inked = true;
    update();
  }
  function end() { drawing = false; }
  if (window.PointerEvent) {
    // Pointer Events cover mouse, pen and finger alike.
    canvas.addEventListener("pointerdown", function (e) {
      start(pos(e));
      if (canvas.setPointerCapture) { canvas.setPointerCapture(e.pointerId); }
      e.preventDefault();
    });
    canvas.addEventListener("pointermove", function (e) { move(pos(e)); e.preventDefault(); });
    ["pointerup", "pointercancel"].forEach(function (t) { canvas.addEventListener(t, end); });
  } else {
    // Older phone browsers: Touch Events draw.
    canvas.addEventListener("touchstart", function (e) { start(pos(e.changedTouches[0])); }, { passive: false });
    canvas.addEventListener("touchmove", function (e) { move(pos(e.changedTouches[0])); }, { passive: false });
    canvas.addEventListener("touchend", end);
    canvas.addEventListener("touchcancel", end);
  }
  // A finger on the pad must never scroll or zoom the page (CSS touch-action: none says the same
  // to browsers that honour it): cancel the touch events' default in every browser.
  ["touchstart", "touchmove", "touchend"].forEach(function (t) {
    canvas.addEventListener(t, function (e) { if (e.cancelable) { e.preventDefault(); } }, { passive: false });
  });
  document.getElementById("clear").addEventListener("click", reset);
  confirmBox.addEventListener("change", update);
  form.addEventListener("submit", function (e) {
    if (!inked) { e.preventDefault(); return; }
    // the guide line is light grey: the server's bi-level threshold drops it
    field.value = canvas.toDataURL("image/png");
  });
  reset();
})();
