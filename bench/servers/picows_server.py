"""picows echo server (callbacks on the raw frames, as picows is meant to be used):
``python picows_server.py PORT``."""
import asyncio
import sys

from picows import WSListener, WSMsgType, ws_create_server


class Echo(WSListener):
    def on_ws_frame(self, transport, frame):
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        else:
            transport.send(frame.msg_type, frame.get_payload_as_memoryview())


async def main(port):
    server = await ws_create_server(lambda request: Echo(), '127.0.0.1', port,
                                    max_frame_size=4 * 2**20)
    await server.serve_forever()


if __name__ == '__main__':
    asyncio.run(main(int(sys.argv[1])))
