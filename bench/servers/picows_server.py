"""picows echo server (callbacks on the raw frames, as picows is meant to be used):
``python picows_server.py PORT``; a text message starting with '!' goes to every open
connection, a loop of its non-blocking ``send`` (S6)."""
import asyncio
import sys

from picows import WSListener, WSMsgType, ws_create_server

OPEN = set()


class Echo(WSListener):
    def on_ws_connected(self, transport):
        OPEN.add(transport)

    def on_ws_disconnected(self, transport):
        OPEN.discard(transport)

    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type == WSMsgType.TEXT and frame.get_payload_as_memoryview()[:1] == b'!':
            payload = frame.get_payload_as_bytes()
            for other in OPEN:
                other.send(WSMsgType.TEXT, payload)
        else:
            transport.send(frame.msg_type, frame.get_payload_as_memoryview())


async def main(port):
    server = await ws_create_server(lambda request: Echo(), '127.0.0.1', port,
                                    max_frame_size=4 * 2**20)
    await server.serve_forever()


if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1])))
