"""Big strings' JSON text kept from the parse and spliced into the encoding (literals.py).

The parse must agree with json.loads on every input, and a spliced encoding must decode
to exactly what the plain encoding decodes to. Small thresholds stand in for 64 Ki
characters, so hypothesis can try many shapes quickly.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kernelkit import literals, wire
from kernelkit.literals import Kept

values = st.recursive(
    st.none() | st.booleans() | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=12,
)
objects = st.dictionaries(st.text(max_size=5), values, max_size=5)


def _loads(data: bytes, kept: Kept) -> tuple[object, tuple[str, ...]]:
    result = literals.loads(data, kept=kept)
    assert result is not None
    return result


def _same(a: object, b: object) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@settings(max_examples=400, deadline=None)
@given(objects, st.sampled_from([None, 0, 2]), st.booleans(), st.integers(1, 6))
def test_the_parse_agrees_with_json_loads_and_keeps_literals_that_decode_to_their_string(
    obj: dict, indent: int | None, ascii_only: bool, least: int
) -> None:
    data = json.dumps(obj, indent=indent, ensure_ascii=ascii_only).encode()
    kept = Kept(min_chars=least)
    result = literals.loads(data, kept=kept)
    if result is None:  # json.dumps writes strict UTF-8: only too small a document
        assert len(data) < least
        return
    got, strings = result
    assert _same(got, json.loads(data))
    assert len(kept) <= len(strings)
    for string in strings:
        literal = kept.literal(string)
        assert literal is not None and len(string) >= least
        assert json.loads(bytes(literal)) == string


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40) | st.text(max_size=40).map(str.encode))
def test_the_parse_fails_where_json_loads_fails(data: bytes) -> None:
    try:
        want: object = json.loads(data)
    except (ValueError, RecursionError):
        want = ValueError
    try:
        result = literals.loads(data, kept=Kept(min_chars=1))
        got = json.loads(data) if result is None else result[0]  # as its callers do
    except (ValueError, RecursionError):
        got = ValueError
    if want is ValueError:
        assert got is ValueError
    else:
        assert got == want or (isinstance(got, float) and math.isnan(got))


@settings(max_examples=300, deadline=None)
@given(objects, objects)
def test_a_spliced_encoding_decodes_to_what_the_plain_one_does(incoming: dict,
                                                               outgoing: dict) -> None:
    kept = Kept(min_chars=1)
    _, strings = _loads(json.dumps(incoming).encode(), kept=kept)
    # Put the parsed strings (which are kept) into an outgoing document, one level down too.
    for i, string in enumerate(strings):
        outgoing[f"s{i}"] = string
        outgoing[f"n{i}"] = {"text": string, "x": [string]}
    spliced = kept.encode(outgoing, wire.dumps)
    assert spliced is not None if strings else spliced is None
    if spliced is not None:
        assert _same(json.loads(spliced), json.loads(wire.dumps(outgoing)))


def test_the_literal_is_the_clients_own_text_of_the_very_string() -> None:
    kept = Kept(min_chars=4)
    frame = b'{"code": "a\\u0041\\n\\ud800b", "silent": false}'
    content, strings = _loads(frame, kept=kept)
    code = content["code"]
    assert code == "aA\n\ud800b" and strings == (code,)
    # The escapes go out as the client wrote them: a lone surrogate stays an escape, which
    # every UTF-8 decoder takes (the plain encoder would write it as bytes that are not UTF-8).
    assert kept.encode({"code": code}, wire.dumps) == b'{"code":"a\\u0041\\n\\ud800b"}'
    # An equal string that is not the same object is encoded, not spliced.
    twin = "".join(["aA\n", "\ud800b"])
    assert twin == code and twin is not code
    assert kept.encode({"code": twin}, wire.dumps) is None
    kept.drop(strings)
    assert len(kept) == 0 and kept.bytes_kept == 0
    assert kept.encode({"code": code}, wire.dumps) is None


def test_non_ascii_text_keeps_byte_exact_literals() -> None:
    kept = Kept(min_chars=3)
    frame = json.dumps({"é": "ünïcødé ✓", "n": 1, "b": "αβγδ"}, ensure_ascii=False).encode()
    content, strings = _loads(frame, kept=kept)
    assert len(strings) == 2
    out = kept.encode({"x": content["b"], "y": content["é"]}, wire.dumps)
    assert out is not None and json.loads(out) == {"x": "αβγδ", "y": "ünïcødé ✓"}
    # One big string among other non-ASCII text: its bytes are found from both ends.
    frame = json.dumps({"ä": "ö", "code": "€ \"x\"\n" * 3, "ü": ["ß"]},
                       ensure_ascii=False).encode()
    single = Kept(min_chars=10)
    content, strings = _loads(frame, single)
    assert strings == (content["code"],)
    literal = single.literal(content["code"])
    assert literal is not None
    assert bytes(literal) == json.dumps(content["code"], ensure_ascii=False).encode()


def test_memory_is_bounded_in_bytes_oldest_first() -> None:
    kept = Kept(max_bytes=100, min_chars=10)
    strings = []
    for n in range(5):
        content, got = _loads(
            json.dumps({"v": str(n) * 40}).encode(), kept=kept)
        strings.append(content["v"])
    assert kept.bytes_kept <= 100
    assert [kept.literal(s) is not None for s in strings] == [False, False, False, True, True]
    # Too big for the bound at all: not kept, and nothing else is evicted for it.
    content, got = _loads(json.dumps({"v": "z" * 200}).encode(), kept=kept)
    assert got == () and kept.literal(strings[-1]) is not None


def test_what_is_not_strict_utf8_is_left_to_the_caller_and_the_rest_parses_as_json() -> None:
    kept = Kept(min_chars=1)
    # json.loads takes UTF-16 and encoded surrogates; the bridge replaces what is not
    # UTF-8. Either way it is the caller's to parse, and nothing is kept.
    assert literals.loads(json.dumps({"a": "bc"}).encode("utf-16"), kept=kept) is None
    assert literals.loads(b'{"a": "\xed\xa0\x80"}', kept=kept) is None
    assert literals.loads(b'{"a": "\xff"}', kept=kept) is None
    assert literals.loads(b'\xef\xbb\xbf{"a": "bc"}', kept=kept) is None  # a BOM
    assert _loads(b'["long string"]', kept) == (["long string"], ())
    with pytest.raises(ValueError):
        literals.loads(b'{"a": "bc"} x', kept=kept)
    assert len(kept) == 0


def test_a_document_with_non_string_keys_is_encoded_whole_by_json() -> None:
    kept = Kept(min_chars=1)
    content, _ = _loads(b'{"a": "long"}', kept=kept)
    assert kept.encode({1: content["a"]}, wire.dumps) is None
    assert kept.encode({"n": {2: content["a"]}, "a": content["a"]}, wire.dumps) == (
        b'{"n":{"2":"long"},"a":"long"}')


def test_a_big_request_goes_out_with_its_literal_and_the_handler_drops_it() -> None:
    """Through the wire: execute_input made from a parsed 1 MB cell carries the cell's text."""
    session = wire.Session(key=b"k")
    client = wire.Session(key=b"k")
    code = ("line of code, \"quoted\" ✓\n" * 40_000)
    frames = client.serialize("execute_request", {"code": code, "silent": False})
    msg = session.deserialize(frames, keep=True)
    assert msg.content["code"] == code and msg.kept == (msg.content["code"],)
    literal = literals.KEPT.literal(msg.content["code"])
    assert literal is not None and bytes(literal) in frames[-1]
    out = session.serialize("execute_input", {"code": msg.content["code"],
                                              "execution_count": 1})
    assert out[-1] == b'{"code":' + bytes(literal) + b',"execution_count":1}'
    assert json.loads(out[-1]) == {"code": code, "execution_count": 1}
    check = client.deserialize(out)
    assert check.content["code"] == code
    literals.KEPT.drop(msg.kept)
    assert literals.KEPT.literal(msg.content["code"]) is None


# -- through the dispatcher, the bridge's codec, and real kernel processes ----------------


def test_the_dispatcher_sends_the_kept_text_and_drops_it_when_the_request_is_done() -> None:
    from kernelkit import Kernel
    from kernelkit.testing import attach

    class Echo(Kernel):
        implementation = "echo"
        language_info = {"name": "echo", "mimetype": "text/plain", "file_extension": ".txt"}

        def do_execute(self, code: str, silent: bool, *args: object, **kw: object) -> dict:
            self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": code})
            return {"status": "ok"}

    transport, dispatcher = attach(Echo())
    client, kernel_side = wire.Session(), wire.Session()
    code = "print('a')\n" * 10_000
    msg = kernel_side.deserialize(client.serialize("execute_request", {"code": code}),
                                  keep=True)
    parsed = msg.content["code"]
    assert literals.KEPT.literal(parsed) is not None
    dispatcher.handle("shell", msg)
    sent = {s.msg_type: s.content for s in transport.sent}
    assert sent["execute_input"]["code"] is parsed and sent["stream"]["text"] is parsed
    assert literals.KEPT.literal(parsed) is None and msg.kept == ()


def test_the_bridge_codec_keeps_a_big_notifications_text_and_splices_a_big_request() -> None:
    from kernelkit.bridge.jsonrpc import Codec, Malformed, Notification, Text

    text = 'say \\"hi\\"\\n\\u00e9\\t' * 10_000  # JSON text: escapes the encoder would not write
    line = bytearray(b'{"jsonrpc":"2.0","method":"stream","params":{"name":"stdout",'
                     b'"text":"' + text.encode() + b'"}}\n')
    event = Codec.parse(line, keep=True)
    assert isinstance(event, Notification) and event.kept == (event.params["text"],)
    assert event.params["text"] == json.loads('"' + text + '"')
    # Published as it came, to IOPub and to the backend again.
    frames = wire.Session().serialize("stream", dict(event.params))
    assert frames[-1] == b'{"name":"stdout","text":"' + text.encode() + b'"}'
    _, request = Codec().request("execute", {"code": event.params["text"], "silent": False})
    assert request == (b'{"jsonrpc":"2.0","id":1,"method":"execute","params":{"code":"'
                       + text.encode() + b'","silent":false}}\n')
    literals.KEPT.drop(event.kept)
    assert literals.KEPT.literal(event.params["text"]) is None
    # Not kept without ``keep``; and a big line that is not a notification keeps nothing.
    assert Codec.parse(line).kept == ()  # type: ignore[union-attr]
    before = len(literals.KEPT)
    assert isinstance(Codec.parse(b'"' + text.encode() + b'"', keep=True), Text)
    broken = Codec.parse(b'{"jsonrpc":"2.0","method":"stream","params":{"text":"'
                         + text.encode() + b'"', keep=True)
    assert isinstance(broken, Malformed)
    assert len(literals.KEPT) == before
    # Bytes that are not UTF-8 are replaced, as they always were.
    bad = Codec.parse(line.replace(b"hi", b"h\xff", 1), keep=True)
    assert isinstance(bad, Notification) and bad.kept == ()
    assert bad.params["text"].startswith('say "h\ufffd"')


def _raw_client(k: Any) -> tuple[Any, Any, Any]:
    import zmq
    from jupyter_client.session import Session as JCSession

    ctx = zmq.Context.instance()
    shell = ctx.socket(zmq.DEALER)
    shell.linger = 0
    shell.connect(f"tcp://127.0.0.1:{k.km.shell_port}")
    iopub = ctx.socket(zmq.SUB)
    iopub.linger = 0
    iopub.setsockopt(zmq.SUBSCRIBE, b"")
    iopub.connect(f"tcp://127.0.0.1:{k.km.iopub_port}")
    return shell, iopub, JCSession(key=k.km.session.key,
                                   signature_scheme=k.km.session.signature_scheme)


def _execute_raw(k: Any, code_literal: bytes) -> dict[str, bytes]:
    """Send an execute whose code is ``code_literal`` as written; the raw content frame of
    each IOPub message for it, by type."""
    shell, iopub, session = _raw_client(k)
    try:
        k.execute("warm")  # the raw SUB socket has subscribed by the time this is answered
        time.sleep(0.2)
        header = session.msg_header("execute_request")
        parts = [json.dumps(header, default=str).encode(), b"{}", b"{}",
                 b'{"code":' + code_literal + b',"silent":false}']
        shell.send_multipart([b"<IDS|MSG>", session.sign(parts), *parts])
        got: dict[str, bytes] = {}
        deadline = time.monotonic() + 60
        while "status:idle" not in got and time.monotonic() < deadline:
            if not iopub.poll(1000):
                continue
            frames = iopub.recv_multipart()
            i = frames.index(b"<IDS|MSG>")
            if json.loads(frames[i + 3]).get("msg_id") != header["msg_id"]:
                continue
            msg_type = json.loads(frames[i + 2])["msg_type"]
            if msg_type == "status":
                msg_type += ":" + json.loads(frames[i + 5])["execution_state"]
            got[msg_type] = frames[i + 5]
        return got
    finally:
        shell.close()
        iopub.close()


LITERAL = ('"' + 'a \\"quoted\\" \\\\ line\\n\\u0041\\u00e9 \\ud83d\\ude00 ' * 8_000 + '"').encode()


def test_echo_sends_a_big_cell_back_as_the_json_text_it_came_in(start_kernel: Any) -> None:
    """The escapes are the client's own (the encoder writes "A", not "\\u0041"): they come
    back verbatim in execute_input and the stream, which decode to the cell's text."""
    got = _execute_raw(start_kernel("kernelkit-echo"), LITERAL)
    code = json.loads(LITERAL)
    for msg_type, key in (("execute_input", b'"code":'), ("stream", b'"text":')):
        frame = got[msg_type]
        assert key + LITERAL in frame, f"{msg_type} was encoded again"
    assert json.loads(got["execute_input"])["code"] == code
    assert json.loads(got["stream"]) == {"name": "stdout", "text": code}


@pytest.mark.parametrize("spec", ["kk-deno-echo", "kk-python-echo"])
def test_a_bridge_echo_returns_a_big_cell_intact(start_kernel: Any, spec: str) -> None:
    """Through both splices (the request line to the backend, and its stream line back to
    IOPub): the text that comes back is the cell's."""
    got = _execute_raw(start_kernel(spec), LITERAL)
    assert b'"code":' + LITERAL in got["execute_input"]
    code = json.loads(LITERAL)
    assert json.loads(got["stream"])["text"].rstrip("\n") == code


def test_threads_keeping_and_dropping_leave_the_count_exact() -> None:
    """Readers keep while handlers drop and encoders read, on many threads (the shell
    reader, subshells, the bridge's reader): the byte count ends at what is still kept."""
    import threading

    kept = Kept(max_bytes=1 << 20, min_chars=8)
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(300):
                content, strings = _loads(json.dumps({"v": f"{n}-{i}-" * 8}).encode(), kept)
                spliced = kept.encode({"v": content["v"]}, wire.dumps)
                assert spliced is None or json.loads(spliced) == {"v": content["v"]}
                kept.drop(strings)
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(kept) == 0 and kept.bytes_kept == 0
