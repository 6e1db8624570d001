// The official Socket.io JS client (v4) against the real-time tier: connect with an API key, print each
// event as one JSON line, exit after --count events (or on a connect_error, printed as `connect_error <json>`).
//   node tests/js/listen.mjs URL API_KEY COUNT [websocket|polling]
import { io } from "socket.io-client";

const [url, token, count, transport] = process.argv.slice(2);
const socket = io(url, { auth: { token }, transports: transport ? [transport] : ["polling", "websocket"],
                         reconnection: false });
let seen = 0;
socket.on("connect", () => console.log(`connected ${socket.io.engine.transport.name}`));
socket.on("connect_error", (err) => { console.log(`connect_error ${JSON.stringify(err.data ?? err.message)}`); process.exit(2); });
socket.on("event", (event) => {
  console.log(JSON.stringify(event));
  if (++seen >= Number(count)) { socket.disconnect(); process.exit(0); }
});
