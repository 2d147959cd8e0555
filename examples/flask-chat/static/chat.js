// Messages arrive on Beacon's `chat` channel, the live div on `status`; the app publishes both.
const list = document.getElementById("messages");
const chat = new EventSource("/__beacon/events?channel=chat");
chat.addEventListener("said", (e) => {
  const item = document.createElement("li");
  item.textContent = JSON.parse(e.data).text;
  list.append(item);
});
const status = new EventSource("/__beacon/events?channel=status");
status.addEventListener("time", (e) => { document.getElementById("live").textContent = e.data; });

// Posting without leaving the page: the message comes back to this page through the stream too.
document.getElementById("chat").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  await fetch(form.action, { method: "POST", body: new URLSearchParams(new FormData(form)), redirect: "manual" });
  form.elements.text.value = "";
});
