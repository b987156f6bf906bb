"""The HTTP/2 half of the test client: an h2 *client* connection over the in-memory stream
pair, so ``TestClient(app, http_version="2")`` runs the real HTTP/2 core and driver.

One request per connection, like the HTTP/1.1 test client.  The client allows server
push, and collects pushed responses until they are complete as well.
"""

from __future__ import annotations

import anyio
import anyio.abc
import h2.config
import h2.connection
import h2.events

from .testing_common import OutgoingRequest, RawResponse


async def exchange_h2(
    stream: anyio.abc.ByteStream, request: OutgoingRequest
) -> tuple[RawResponse, list[RawResponse]]:
    """Send one request on a new HTTP/2 connection; return its response and the pushed ones.

    The request's trailers, if any, end it (a HEADERS frame after the body).
    """
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    body = request.body
    request_trailers = request.trailer_block()
    conn.send_headers(
        1, request.header_block(b"http"), end_stream=not body and not request_trailers
    )
    if not body and request_trailers:
        conn.send_headers(1, request_trailers, end_stream=True)
    responses = {1: RawResponse(1)}
    pushed: list[RawResponse] = []
    sent = 0
    await stream.send(conn.data_to_send())
    while not all(r.ended for r in responses.values()):
        # Send as much body as the server's windows allow; then read what it answers.
        while sent < len(body) and not responses[1].ended:
            window = min(conn.local_flow_control_window(1), conn.max_outbound_frame_size)
            if window <= 0:
                break
            piece = body[sent : sent + window]
            sent += len(piece)
            last = sent == len(body)
            conn.send_data(1, piece, end_stream=last and not request_trailers)
            if last and request_trailers:
                conn.send_headers(1, request_trailers, end_stream=True)
        data = conn.data_to_send()
        if data:
            await stream.send(data)
        try:
            received = await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            break  # the server closed: return what arrived
        for event in conn.receive_data(received):
            _apply(conn, event, responses, pushed)
        data = conn.data_to_send()
        if data:
            await stream.send(data)
    return responses[1], pushed


def _apply(
    conn: h2.connection.H2Connection,
    event: h2.events.Event,
    responses: dict[int, RawResponse],
    pushed: list[RawResponse],
) -> None:
    if isinstance(event, h2.events.PushedStreamReceived):
        promise = dict(event.headers or ())
        promised = event.pushed_stream_id or 0
        path = bytes(promise.get(b":path", b"")).decode("latin-1")
        responses[promised] = RawResponse(promised, path=path)
        pushed.append(responses[promised])
        return
    response = responses.get(getattr(event, "stream_id", 0) or 0)
    if response is None:
        return
    if isinstance(event, h2.events.ResponseReceived):
        for name, value in event.headers or ():
            if name == b":status":
                response.status = int(value)
            else:
                response.headers.append((bytes(name), bytes(value)))
    elif isinstance(event, h2.events.TrailersReceived):
        response.trailers.extend((bytes(n), bytes(v)) for n, v in event.headers or ())
    elif isinstance(event, h2.events.DataReceived):
        response.body += event.data
        if event.flow_controlled_length:
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
    elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
        response.ended = True
