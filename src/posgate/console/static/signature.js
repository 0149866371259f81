// Make-up signature pad: finger, pen or mouse on a canvas (Pointer Events), sent as a PNG data URL.
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
  canvas.addEventListener("pointerdown", function (e) {
    drawing = true; last = pos(e);
    if (canvas.setPointerCapture) { canvas.setPointerCapture(e.pointerId); }
    e.preventDefault();
  });
  canvas.addEventListener("pointermove", function (e) {
    if (!drawing) { return; }
    var p = pos(e);
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
    e.preventDefault();
  });
  ["pointerup", "pointercancel", "pointerleave"].forEach(function (t) {
    canvas.addEventListener(t, function () { drawing = false; });
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
