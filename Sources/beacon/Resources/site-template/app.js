// A little state to show that a stylesheet edit does not reload the page:
// the counter keeps running when style.css changes, and restarts when this file changes.
const loadedAt = new Date();
document.getElementById("loaded-at") &&
  (document.getElementById("loaded-at").textContent = loadedAt.toLocaleTimeString());
let seconds = 0;
setInterval(() => {
  seconds += 1;
  const counter = document.getElementById("counter");
  if (counter) counter.textContent = String(seconds);
}, 1000);
