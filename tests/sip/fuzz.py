"""Hypothesis strategies for hostile SIP datagrams: well-formed seeds of every method, then mutated.

The mutations are those a broken or hostile peer produces: random bytes, truncation, oversized headers,
a wrong Content-Length, broken SDP, unknown methods, missing or repeated headers, bare LF or CR line ends,
bytes that are not UTF-8, stray in-dialog requests (BYE, CANCEL, ACK) and stray responses.
"""

from __future__ import annotations

from hypothesis import strategies as st

METHODS = ("INVITE", "OPTIONS", "BYE", "CANCEL", "ACK", "REGISTER", "INFO", "MESSAGE", "SUBSCRIBE", "NOTIFY",
           "PRACK", "UPDATE", "REFER", "PUBLISH")
HEADERS = ("Via", "Max-Forwards", "From", "To", "Call-ID", "CSeq", "Contact", "Content-Type", "Content-Length")
SDP_LINES = ("v=0", "o=fuzz 1 1 IN IP4 127.0.0.1", "s=-", "c=IN IP4 127.0.0.1", "t=0 0",
             "m=audio 40000 RTP/AVP 0 8 101", "a=rtpmap:0 PCMU/8000", "a=rtpmap:101 telephone-event/8000",
             "a=sendrecv")
SDP_GARBAGE = ("m=audio 99999999 RTP/AVP 0", "m=audio -1 RTP/AVP", "m=video 0 RTP/AVP 96", "c=IN IP6 ::",
               "c=IN IP4 999.1.1.1", "o=", "m=audio 40000 RTP/SAVP 0", "a=rtpmap:0", "a=crypto:1 AES_CM_128",
               "m=audio 40000 UDP/TLS/RTP/SAVPF 111", "a=rtcp:0", "m=" + "A" * 3000, "b=AS:-5", "a=ptime:0",
               "m=audio 40000 RTP/AVP " + " ".join(str(i) for i in range(128)))


def _message(method: str, port: int, call_id: str, tag: str, cseq: int, sdp: list[str] | None,
             headers: list[tuple[str, str]]) -> bytes:
    body = ("\r\n".join(sdp) + "\r\n") if sdp is not None else ""
    lines = [f"{method} sip:ivr@127.0.0.1:{port} SIP/2.0",
             f"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK{call_id[:12]};rport",
             "Max-Forwards: 70",
             f"From: <sip:fuzz@127.0.0.1>;tag={tag}",
             f"To: <sip:ivr@127.0.0.1:{port}>",
             f"Call-ID: {call_id}",
             f"CSeq: {cseq} {method}",
             "Contact: <sip:fuzz@127.0.0.1:5999>"]
    lines += [f"{name}: {value}" for name, value in headers]
    if sdp is not None:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


@st.composite
def seeds(draw: st.DrawFn, port: int) -> bytes:
    """A well-formed request (INVITEs mostly with SDP), before any mutation."""
    method = draw(st.sampled_from(METHODS + ("FOO", "invite", "BREW")))
    sdp = list(SDP_LINES) if method in ("INVITE", "UPDATE", "PRACK") and draw(st.booleans()) else None
    if sdp is not None and draw(st.booleans()):
        sdp = draw(st.lists(st.sampled_from(SDP_LINES + SDP_GARBAGE), min_size=0, max_size=12))
    call_id = draw(st.sampled_from(("fuzz-1@127.0.0.1", "fuzz-2@127.0.0.1"))
                   | st.text("abcdef0123456789", min_size=1, max_size=24))
    headers = draw(st.lists(st.tuples(st.sampled_from(HEADERS + ("Require", "Supported", "Replaces", "Refer-To",
                                                                  "Session-Expires", "Route", "X-Fuzz")),
                                      st.text(max_size=40)), max_size=4))
    return _message(method, port, call_id, draw(st.text("0123456789abc", min_size=1, max_size=8)),
                    draw(st.integers(-5, 2**32 + 5)), sdp, headers)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """One mutation of a datagram."""
    kind = draw(st.sampled_from(("keep", "truncate", "flip", "insert", "huge-header", "content-length",
                                 "drop-header", "repeat-header", "line-ends", "latin1", "nul", "response")))
    if kind == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "flip" and data:
        buf = bytearray(data)
        for _ in range(draw(st.integers(1, 16))):
            buf[draw(st.integers(0, len(buf) - 1))] = draw(st.integers(0, 255))
        return bytes(buf)
    if kind == "insert":
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.binary(min_size=1, max_size=200)) + data[at:]
    head, sep, body = data.partition(b"\r\n\r\n")
    if kind == "huge-header":
        name = draw(st.sampled_from(HEADERS + ("X-Big", "Via", "Record-Route")))
        size = draw(st.sampled_from((1024, 8192, 30000, 60000)))
        return head + f"\r\n{name}: ".encode() + b"x" * size + sep + body
    if kind == "content-length":
        value = draw(st.sampled_from(("-1", "99999999", "abc", "", "0", "18446744073709551616", "1e3")))
        lines = [ln for ln in head.split(b"\r\n") if not ln.lower().startswith(b"content-length")]
        return b"\r\n".join(lines) + f"\r\nContent-Length: {value}".encode() + sep + body
    if kind == "drop-header":
        lines = head.split(b"\r\n")
        if len(lines) > 1:
            del lines[draw(st.integers(1, len(lines) - 1))]
        return b"\r\n".join(lines) + sep + body
    if kind == "repeat-header":
        lines = head.split(b"\r\n")
        line = lines[draw(st.integers(0, len(lines) - 1))]
        return b"\r\n".join(lines + [line] * draw(st.integers(1, 40))) + sep + body
    if kind == "line-ends":
        return data.replace(b"\r\n", draw(st.sampled_from((b"\n", b"\r", b"\r\r\n", b" \r\n"))))
    if kind == "latin1":
        return data.replace(b"sip:fuzz", b'"Jos\xe9 \xff\xfe" <sip:fuzz', 1)
    if kind == "nul":
        at = draw(st.integers(0, len(data)))
        return data[:at] + b"\x00" * draw(st.integers(1, 8)) + data[at:]
    if kind == "response":
        status = draw(st.sampled_from((100, 180, 200, 401, 486, 503, 999)))
        first, _, rest = head.partition(b"\r\n")
        return f"SIP/2.0 {status} Fuzz".encode() + b"\r\n" + rest + sep + body
    return data


def datagrams(port: int) -> st.SearchStrategy[bytes]:
    """Hostile datagrams for a server on 127.0.0.1:port: mutated requests, and now and then pure noise."""
    noise = st.builds(lambda rnd, size: rnd.randbytes(size), st.randoms(use_true_random=False),
                      st.sampled_from((0, 1, 12, 200, 1500, 9000, 65000)))
    return st.one_of(seeds(port).flatmap(mutated), noise)
