"""The seed's WebSocket apps with a page that uses them from a browser.

    python examples/websockets/app.py          # http://127.0.0.1:8000/
    python -m httpy examples.websockets.app    # the same, from the command line

``chat.py`` (``/ws/chat/{room}``) and ``data_stream.py`` (``/ws/data-stream``) are the
seed's snippets, unchanged; they register on the default app, as does the page below.
The data stream paces itself with ``asyncio.sleep``, so it needs the asyncio backend
(on trio it reports "no running event loop" and closes).
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chat  # noqa: F401  (registers /ws/chat/{room})
import data_stream  # noqa: F401  (registers /ws/data-stream)

from httpy import Request, Response, get, run

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>HTTPy WebSockets</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; max-width: 60rem; }
  section { border: 1px solid #ccc; border-radius: 6px; padding: 1rem; margin-bottom: 1rem; }
  #log, #data { height: 14rem; overflow-y: auto; background: #f7f7f7; padding: .5rem;
                font-family: monospace; white-space: pre-wrap; }
  .critical { color: #b00; } .warning { color: #b60; }
</style>
</head>
<body>
<h1>HTTPy WebSockets</h1>
<section>
  <h2>Chat</h2>
  <label>Room <input id="room" value="lobby"></label>
  <label>Name <input id="name" value="guest"></label>
  <button id="join">Join</button>
  <div id="log"></div>
  <form id="send"><input id="message" size="50" placeholder="Say something">
    <button>Send</button></form>
</section>
<section>
  <h2>Data stream</h2>
  <button id="start">Start</button> <button id="stop">Stop</button>
  <div id="data"></div>
</section>
<script>
const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
const $ = (id) => document.getElementById(id);
function line(box, text, cls) {
  const div = document.createElement("div");
  div.textContent = text;
  if (cls) div.className = cls;
  box.appendChild(div);
  box.scrollTop = box.scrollHeight;
}
let chat = null;
$("join").onclick = () => {
  if (chat) chat.close();
  const room = encodeURIComponent($("room").value || "lobby");
  chat = new WebSocket(wsBase + "/ws/chat/" + room);
  chat.onmessage = (event) => {
    try {
      const m = JSON.parse(event.data);
      line($("log"), `[${m.timestamp}] ${m.sender}: ${m.message}`);
    } catch (e) {
      line($("log"), event.data);
    }
  };
  chat.onclose = (event) => line($("log"), `(closed: ${event.code})`);
};
$("send").onsubmit = (event) => {
  event.preventDefault();
  if (!chat || chat.readyState !== WebSocket.OPEN) return;
  chat.send(JSON.stringify({sender: $("name").value, message: $("message").value,
                            timestamp: new Date().toLocaleTimeString()}));
  $("message").value = "";
};
let stream = null;
$("start").onclick = () => {
  if (stream) stream.close();
  stream = new WebSocket(wsBase + "/ws/data-stream");
  stream.onmessage = (event) => {
    try {
      const d = JSON.parse(event.data);
      line($("data"), `${d.timestamp}  ${d.value.toFixed(2).padStart(6)}  ${d.status}`,
           d.status);
    } catch (e) {
      line($("data"), event.data);
    }
  };
  stream.onclose = (event) => line($("data"), `(closed: ${event.code})`);
};
$("stop").onclick = () => { if (stream) stream.close(); };
</script>
</body>
</html>
"""


@get("/")
async def page(request: Request) -> Response:
    return Response.html(PAGE)


if __name__ == "__main__":
    asyncio.run(run(host="127.0.0.1", port=int(os.environ.get("PORT", "8000"))))
