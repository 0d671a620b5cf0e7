"""permessage-deflate (RFC 7692): negotiation for both roles and the per-message transform.

The server calls ``negotiate(request.extensions, options)``; the client sends
``client_offer(options)`` and checks the answer with ``client_negotiate(value, options)``.
Either way the result is a ``PerMessageDeflate``, the ``Extension`` the protocol core runs.

A server compresses with a 12-bit window and memLevel 5 and asks clients that allow it for
``client_max_window_bits=12``: about a seventh of zlib's defaults' memory for 10% more bytes
(bench/RESULTS.md, "Measurements behind the code"). Both zlib objects are created on first
use, and dropped after each message when context takeover is off. Messages under ``min_size``
(64 bytes) are sent uncompressed, which RFC 7692 section 6 allows: there compression saves
less than a packet's headers. Work that may take long goes through ``offload`` when the
I/O layer sets it (the gevent layer runs zlib, which releases the GIL, in the hub's
threadpool): compressing a payload of ``offload_size`` or more, and inflating what a message
makes past its first ``INFLATE_SLICE`` bytes (all of it from a payload of ``offload_size`` or
more). Inflating takes as long as what comes out, which a small payload does not bound. This
module never imports gevent.

zlib cannot compress raw DEFLATE with an 8-bit window (``wbits=-8`` is rejected since zlib
1.2.9), so an agreed window of 8 bits is compressed with 9: zlib never emits a distance
beyond ``window - 262`` (250 bytes at 9 bits), which an 8-bit (256-byte) window decodes.
"""
from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, Callable, Hashable, TypeVar, Union

from ..errors import HandshakeError, ProtocolError
from ..limits import INFLATE_SLICE
from .connection import Extension
from .handshake import parse_extension_header

if TYPE_CHECKING:
    from .._types import BytesLike, ExtensionOffers

    #: A ``compression=`` argument (``compression_options``).
    CompressionOption = Union[bool, None, dict[str, Any], 'DeflateOptions']
    #: Agreed parameters: ``True`` for those without a value, else the window bits.
    Params = dict[str, Union[bool, int]]

_T = TypeVar('_T')

NAME = 'permessage-deflate'
_TAIL = b'\x00\x00\xff\xff'    # the empty stored block of a sync flush (RFC 7692 7.2.1)
_BITS_VALUES = {str(bits): bits for bits in range(8, 16)}
_PARAMS = ('server_no_context_takeover', 'client_no_context_takeover',
           'server_max_window_bits', 'client_max_window_bits')
_DEFAULT_WINDOW_BITS = 12


class DeflateOptions:
    """Compression settings for a server or a client, in RFC 7692 terms.

    ``server_max_window_bits`` / ``client_max_window_bits`` (8-15): a server compresses with
    at most ``server_max_window_bits`` (default 12) and asks a client that allows it to use
    ``client_max_window_bits`` (default 12); a client compresses with at most
    ``client_max_window_bits`` (default 12, offered as a hint) and asks the server for
    ``server_max_window_bits`` only when set. ``*_no_context_takeover`` asks that side to
    compress each message on its own (less memory between messages, worse compression).
    ``level`` and ``mem_level`` go to zlib; ``min_size`` is the smallest message compressed;
    ``offload_size`` the smallest payload handed whole to the I/O layer's ``offload`` hook
    (smaller ones are inflated here up to ``INFLATE_SLICE`` bytes, the rest there).
    """

    def __init__(self, level: int = 6, mem_level: int = 5,
                 server_max_window_bits: int | None = None,
                 client_max_window_bits: int | None = None,
                 server_no_context_takeover: bool = False,
                 client_no_context_takeover: bool = False, min_size: int = 64,
                 offload_size: int = 64 * 1024) -> None:
        for name, bits in (('server_max_window_bits', server_max_window_bits),
                           ('client_max_window_bits', client_max_window_bits)):
            if bits is not None and bits not in range(8, 16):
                raise ValueError('%s must be between 8 and 15, not %r' % (name, bits))
        if level not in range(-1, 10):
            raise ValueError('level must be between -1 and 9, not %r' % (level,))
        if mem_level not in range(1, 10):
            raise ValueError('mem_level must be between 1 and 9, not %r' % (mem_level,))
        self.level = level
        self.mem_level = mem_level
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.server_no_context_takeover = bool(server_no_context_takeover)
        self.client_no_context_takeover = bool(client_no_context_takeover)
        self.min_size = min_size
        self.offload_size = offload_size

    def __repr__(self) -> str:
        return 'DeflateOptions(%s)' % ', '.join('%s=%r' % item for item in vars(self).items())


_DEFAULTS = DeflateOptions()


def compression_options(value: CompressionOption) -> DeflateOptions | None:
    """``DeflateOptions`` for a ``compression=`` argument: None or False disables
    compression, True means the defaults, a dict holds ``DeflateOptions`` arguments."""
    if value is None or value is False:
        return None
    if value is True:
        return _DEFAULTS
    if isinstance(value, DeflateOptions):
        return value
    if isinstance(value, dict):
        return DeflateOptions(**value)
    raise TypeError('compression must be None, True, a dict or DeflateOptions, not %r'
                    % (value,))


class PerMessageDeflate(Extension):
    """One connection's compressor and decompressor with the agreed parameters.

    ``offload``, when the I/O layer sets it, is ``offload(func, *args) -> result``: it runs
    zlib work that may take long away from the event loop (see the module docstring).
    """

    name = NAME

    def __init__(self, options: DeflateOptions, send_bits: int, receive_bits: int,
                 send_reset: bool, receive_reset: bool) -> None:
        self.send_bits = send_bits            # agreed window of our compressor
        self.receive_bits = receive_bits      # agreed window of the peer's compressor
        self.send_reset = send_reset          # our no_context_takeover
        self.receive_reset = receive_reset    # the peer's no_context_takeover
        self.offload: Callable[..., Any] | None = None
        self._level = options.level
        self._mem_level = options.mem_level
        self._min_size = options.min_size
        self._offload_size = options.offload_size
        self._deflater: zlib._Compress | None = None
        self._inflater: zlib._Decompress | None = None
        self._window: bytes | None = None   # recent output, kept once the peer used BFINAL blocks
        self._in_message = False     # a fragmented message is being sent
        self._compressing = False    # ... and its first fragment was compressed

    # -- sending (RFC 7692 7.2.1) -----------------------------------------------------------

    def frame_key(self) -> Hashable | None:
        """Without context takeover a message compresses alike on every connection with
        the same settings."""
        if not self.send_reset:
            return None
        return ('permessage-deflate', self._level, self._mem_level, self.send_bits,
                self._min_size)

    def encode(self, payload: BytesLike, fin: bool,
               offload: bool = True) -> tuple[BytesLike, bool]:
        """Compress one fragment: the first fragment decides for the whole message."""
        if not self._in_message:
            self._compressing = not fin or len(payload) >= self._min_size
        self._in_message = not fin
        if not self._compressing:
            return payload, False
        deflater = self._deflater
        if deflater is None:
            # 8 bits is compressed with 9: see the module docstring.
            deflater = self._deflater = zlib.compressobj(
                self._level, zlib.DEFLATED, -max(self.send_bits, 9), self._mem_level)
        data = (self._run(len(payload), _deflate, deflater, payload) if offload
                else _deflate(deflater, payload))
        if fin:
            if data.endswith(_TAIL):
                data = data[:-4]
            if self.send_reset:
                self._deflater = None
        return data, True

    # -- receiving (RFC 7692 7.2.2) ---------------------------------------------------------

    def decode(self, payload: bytes, max_size: int) -> bytes:
        """Inflate one whole message, never producing more than ``max_size`` bytes. With an
        ``offload`` hook, a payload under ``offload_size`` is inflated here up to
        ``INFLATE_SLICE`` bytes, and only a message that makes more goes on there: a small
        message costs no round trip, and a small payload that inflates to megabytes does
        not hold up the event loop."""
        inflater = self._inflater
        if inflater is None:
            inflater = self._inflater = zlib.decompressobj(-self.receive_bits)
        limit = max_size + 1
        pending = _pieces(payload)
        offload = self.offload
        if offload is not None and len(payload) >= self._offload_size:
            data = offload(_inflate, inflater, pending, limit, max_size)
        elif offload is None or limit <= INFLATE_SLICE:
            data = _inflate(inflater, pending, limit, max_size)
        else:
            data = _inflate(inflater, pending, INFLATE_SLICE, max_size)
            if len(data) == INFLATE_SLICE:   # not done, maybe
                data = offload(_inflate, inflater, pending, limit, max_size, data)
        if self.receive_reset:
            self._inflater = None
        elif inflater.eof:
            self._restart_after_final_block(data)
        elif self._window is not None:
            self._window = self._keep_window(data)
        return data

    def _restart_after_final_block(self, data: bytes) -> None:
        """RFC 7692 7.2.3.4: a message may end with a BFINAL block, after which zlib's
        inflater is finished and would return b'' for everything. Start a new one that knows
        the window, as the peer's next message may still refer to it (context takeover).
        From then on the window is kept; bytes before the first such message are not."""
        window = self._keep_window(data)
        self._window = window
        self._inflater = zlib.decompressobj(-self.receive_bits, zdict=window)

    def _keep_window(self, data: bytes) -> bytes:
        size = 1 << self.receive_bits
        return ((self._window or b'') + data[-size:])[-size:]

    def _run(self, size: int, func: Callable[..., _T], *args: Any) -> _T:
        if self.offload is not None and size >= self._offload_size:
            return self.offload(func, *args)
        return func(*args)


def _deflate(deflater: zlib._Compress, payload: BytesLike) -> bytes:
    return deflater.compress(payload) + deflater.flush(zlib.Z_SYNC_FLUSH)


def _pieces(payload: bytes) -> list[BytesLike]:
    """A message's input for ``_inflate``: its payload in pieces of ``INFLATE_SLICE`` bytes
    at most (views, not copies), then the sync-flush tail; a payload of one piece takes the
    tail along (copying it costs less than a zlib call)."""
    if len(payload) <= INFLATE_SLICE:
        return [payload + _TAIL]
    view = memoryview(payload)
    pieces: list[BytesLike] = [view[start:start + INFLATE_SLICE]
                               for start in range(0, len(payload), INFLATE_SLICE)]
    pieces.append(_TAIL)
    return pieces


def _inflate(inflater: zlib._Decompress, pending: list[BytesLike], budget: int,
             max_size: int, done: bytes = b'') -> bytes:
    """``done`` followed by what the ``pending`` inputs inflate to, until the message ends or
    the output reaches ``budget`` bytes (the message may then go on: a later call continues
    with what is left in ``pending``). Output past ``max_size`` fails with 1009; as the
    budget of a whole message is ``max_size + 1``, a small message inflating to gigabytes
    never allocates more than that.

    Each zlib call makes at most ``INFLATE_SLICE`` bytes from at most one piece of input
    (``_pieces``): zlib releases the GIL while it inflates, not while it joins its output
    or copies the input it did not use, which on a large message would stop the event
    loop's thread for milliseconds. The parts are joined once, by ``bytes.join``, which
    releases the GIL for large copies."""
    size = len(done)
    parts = [done] if size else []
    try:
        while pending and size < budget:
            room = min(budget - size, INFLATE_SLICE)
            data = inflater.decompress(pending[0], room)
            if data:
                parts.append(data)
                size += len(data)
            if len(data) == room:
                # Stopped by the room: zlib may hold more output for input it has
                # consumed, which the next call (with what is left, maybe b'') gives.
                pending[0] = inflater.unconsumed_tail
            elif inflater.eof:
                break   # a final block (RFC 7692 7.2.3.4): what follows is not inflated
            else:
                del pending[0]
    except zlib.error as exc:
        raise ProtocolError('invalid compressed data (%s)' % exc, 1007) from None
    if size > max_size:
        raise ProtocolError('message over the limit of %d bytes after decompression'
                            % max_size, 1009)
    return parts[0] if len(parts) == 1 else b''.join(parts)


# -- negotiation (RFC 7692 7.1) -----------------------------------------------------------------

def _parse_params(params: list[tuple[str, str | None]]) -> Params:
    """The parameters of one offer or response as a dict (``True`` for those without a
    value); ValueError for an unknown, repeated or malformed one (RFC 7692 7.1)."""
    agreed: Params = {}
    for name, value in params:
        if name not in _PARAMS:
            raise ValueError('unknown parameter %r' % name)
        if name in agreed:
            raise ValueError('parameter %r given twice' % name)
        if value is None:
            if name == 'server_max_window_bits':
                raise ValueError('server_max_window_bits needs a value')
            agreed[name] = True
        elif name.endswith('_no_context_takeover'):
            raise ValueError('%s takes no value' % name)
        elif value in _BITS_VALUES:
            agreed[name] = _BITS_VALUES[value]
        else:
            raise ValueError('%s=%s is not a window size from 8 to 15' % (name, value))
    return agreed


def negotiate(offers: ExtensionOffers, options: CompressionOption
              ) -> tuple[str, PerMessageDeflate] | None:
    """Server side: ``(response header value, PerMessageDeflate)`` for the first
    permessage-deflate offer we can accept, or None (the connection is then uncompressed).

    ``offers`` is ``ServerRequest.extensions``. Offers with unknown, repeated or malformed
    parameters are skipped, never answered with an error.
    """
    options = compression_options(options)
    if options is None:
        return None
    for name, params in offers:
        if name != NAME:
            continue
        try:
            offer = _parse_params(params)
        except ValueError:
            continue
        return _accept_offer(offer, options)
    return None


def _accept_offer(offer: Params, options: DeflateOptions) -> tuple[str, PerMessageDeflate]:
    response = [NAME]
    server_reset = options.server_no_context_takeover or 'server_no_context_takeover' in offer
    client_reset = options.client_no_context_takeover or 'client_no_context_takeover' in offer
    if server_reset:   # 7.1.1.1: we must agree if asked and may on our own
        response.append('server_no_context_takeover')
    if client_reset:   # 7.1.1.2: lets us drop the inflater between messages
        response.append('client_no_context_takeover')
    # 7.1.2.1: answer a requested limit with the same or a smaller value; without a request
    # we may still announce ours, which lets the client use a smaller inflater.
    server_bits = options.server_max_window_bits or _DEFAULT_WINDOW_BITS
    if 'server_max_window_bits' in offer:
        server_bits = min(server_bits, offer['server_max_window_bits'])
    if server_bits < 15 or 'server_max_window_bits' in offer:
        response.append('server_max_window_bits=%d' % server_bits)
    # 7.1.2.2: only a client that offered client_max_window_bits may be limited, to at most
    # the value it offered; otherwise it may use the full 15-bit window.
    client_bits = 15
    offered = offer.get('client_max_window_bits')
    if offered is not None:
        client_bits = options.client_max_window_bits or _DEFAULT_WINDOW_BITS
        if offered is not True:
            client_bits = min(client_bits, offered)
        if client_bits < 15:
            response.append('client_max_window_bits=%d' % client_bits)
    extension = PerMessageDeflate(options, send_bits=server_bits, receive_bits=client_bits,
                                  send_reset=server_reset, receive_reset=client_reset)
    return '; '.join(response), extension


def client_offer(options: CompressionOption) -> str:
    """Client side: the Sec-WebSocket-Extensions value to send, or '' when disabled."""
    options = compression_options(options)
    if options is None:
        return ''
    offer = [NAME]
    if options.server_no_context_takeover:
        offer.append('server_no_context_takeover')
    if options.client_no_context_takeover:
        offer.append('client_no_context_takeover')
    if options.server_max_window_bits is not None:
        offer.append('server_max_window_bits=%d' % options.server_max_window_bits)
    client_bits = options.client_max_window_bits or _DEFAULT_WINDOW_BITS
    offer.append('client_max_window_bits' if client_bits == 15
                 else 'client_max_window_bits=%d' % client_bits)
    return '; '.join(offer)


def client_negotiate(value: str | None, options: CompressionOption
                     ) -> PerMessageDeflate | None:
    """Client side: the ``PerMessageDeflate`` the server's Sec-WebSocket-Extensions ``value``
    agreed to, or None when it declined. A response we did not offer, or that breaks RFC
    7692 7.1, fails the handshake with ``HandshakeError``."""
    options = compression_options(options)
    if not (value or '').strip():
        return None
    try:
        accepted = parse_extension_header(value)  # type: ignore[arg-type]   # not None here
        if options is None or len(accepted) != 1 or accepted[0][0] != NAME:
            raise ValueError('the server accepted extensions we did not offer')
        agreed = _parse_params(accepted[0][1])
        return _accept_response(agreed, options)
    except ValueError as exc:
        raise HandshakeError('bad Sec-WebSocket-Extensions %r in the response: %s'
                             % (value, exc), status=101) from None


def _accept_response(agreed: Params, options: DeflateOptions) -> PerMessageDeflate:
    if options.server_no_context_takeover and 'server_no_context_takeover' not in agreed:
        raise ValueError('server_no_context_takeover was requested, not agreed')
    server_bits = agreed.get('server_max_window_bits', 15)
    requested = options.server_max_window_bits
    if requested is not None and ('server_max_window_bits' not in agreed or
                                  server_bits > requested):
        raise ValueError('server_max_window_bits=%d was requested, not agreed' % requested)
    # 7.1.2.2 wants a limit no larger than the value we offered; some servers (Autobahn's)
    # ignore that value. A larger limit is harmless (we never compress with more than we
    # offered), so it is accepted rather than failing the handshake.
    client_bits = options.client_max_window_bits or _DEFAULT_WINDOW_BITS
    limit = agreed.get('client_max_window_bits')
    if limit is True:
        raise ValueError('client_max_window_bits needs a value in a response')
    if limit is not None:
        client_bits = min(client_bits, limit)
    client_reset = (options.client_no_context_takeover or
                    'client_no_context_takeover' in agreed)
    return PerMessageDeflate(options, send_bits=client_bits, receive_bits=server_bits,
                             send_reset=client_reset,
                             receive_reset='server_no_context_takeover' in agreed)
