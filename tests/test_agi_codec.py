from __future__ import annotations

import pytest

from ami_bridge.agi_codec import (
    MAX_COMMAND_LINE,
    AgiHeaderParser,
    AgiReply,
    AgiReplyParser,
    Hangup,
    format_command,
)
from ami_bridge.agi_errors import (
    AgiCommandFailed,
    AgiHangup,
    AgiInvalidCommand,
    AgiProtocolError,
    AgiUsageError,
    raise_for_reply,
)

HEADER = (
    b"agi_network: yes\n"
    b"agi_network_script: city\n"
    b"agi_request: agi://127.0.0.1:4573/city\n"
    b"agi_channel: PJSIP/trunk-00000001\n"
    b"agi_language: ja\n"
    b"agi_uniqueid: 1700000000.42\n"
    b"agi_callerid: 0312345678\n"
    b"agi_calleridname: \xe5\xb8\x82\xe6\xb0\x91\n"
    b"agi_dnid: 0501234567\n"
    b"agi_context: from-trunk\n"
    b"agi_extension: 100\n"
    b"agi_accountcode: \n"
    b"agi_arg_1: ja\n"
    b"agi_arg_2: a b: c\n"
    b"\n"
)

USAGE_REPLY = (
    b"520-Invalid command syntax.  Proper usage follows:\n"
    b" Usage: GET DATA <file to be streamed> [timeout] [maxdigits]\n"
    b"\n"
    b"Stream the given file, and receive DTMF data.\n"
    b"520 End of proper usage.\n"
)


def feed_bytewise_header(data: bytes) -> AgiHeaderParser:
    parser = AgiHeaderParser()
    for i in range(len(data)):
        assert not parser.complete
        parser.feed(data[i : i + 1])
    return parser


def drain(parser: AgiReplyParser) -> list[AgiReply | Hangup]:
    events: list[AgiReply | Hangup] = []
    while (event := parser.next_event()) is not None:
        events.append(event)
    return events


def feed_in_chunks(data: bytes, size: int) -> list[AgiReply | Hangup]:
    parser = AgiReplyParser()
    events: list[AgiReply | Hangup] = []
    for i in range(0, len(data), size):
        parser.feed(data[i : i + size])
        events.extend(drain(parser))
    return events


# --- header -----------------------------------------------------------------


def test_header_fed_one_byte_at_a_time() -> None:
    parser = feed_bytewise_header(HEADER)
    assert parser.complete
    assert parser.leftover == b""
    env = parser.env
    assert env["agi_network_script"] == "city"
    assert env["agi_request"] == "agi://127.0.0.1:4573/city"
    assert env["agi_channel"] == "PJSIP/trunk-00000001"
    assert env["agi_uniqueid"] == "1700000000.42"
    assert env["agi_callerid"] == "0312345678"
    assert env["agi_calleridname"] == "市民"
    assert env["agi_dnid"] == "0501234567"
    assert env["agi_extension"] == "100"
    assert env["agi_accountcode"] == ""
    assert env["agi_arg_1"] == "ja"
    # Only the first colon separates key and value.
    assert env["agi_arg_2"] == "a b: c"


@pytest.mark.parametrize("size", [2, 7, 64, len(HEADER)])
def test_header_in_chunks_keeps_leftover(size: int) -> None:
    data = HEADER + b"HANGUP\n"
    parser = AgiHeaderParser()
    for i in range(0, len(data), size):
        parser.feed(data[i : i + size])
    assert parser.complete
    assert parser.env["agi_extension"] == "100"
    assert parser.leftover == b"HANGUP\n"


def test_header_accepts_crlf_and_appends_later_bytes_to_leftover() -> None:
    parser = AgiHeaderParser()
    parser.feed(b"agi_channel: Local/1@x-0001;1\r\n\r\n200 ")
    assert parser.complete
    assert parser.env == {"agi_channel": "Local/1@x-0001;1"}
    parser.feed(b"result=1\n")
    assert parser.leftover == b"200 result=1\n"


def test_incomplete_header_is_not_complete() -> None:
    parser = AgiHeaderParser()
    parser.feed(b"agi_network: yes\nagi_channel: SIP/x\n")
    assert not parser.complete
    assert parser.env == {"agi_network": "yes", "agi_channel": "SIP/x"}


def test_oversize_header_is_rejected_even_without_newline() -> None:
    parser = AgiHeaderParser(max_size=1024)
    parser.feed(b"agi_calleridname: ")
    with pytest.raises(AgiProtocolError, match="exceeds"):
        parser.feed(b"x" * 1024)


def test_oversize_header_made_of_many_lines_is_rejected() -> None:
    parser = AgiHeaderParser()
    with pytest.raises(AgiProtocolError, match="exceeds"):
        for i in range(2000):
            parser.feed(f"agi_arg_{i + 1}: value\n".encode())


def test_header_at_the_limit_is_accepted() -> None:
    line = b"agi_arg_1: " + b"v" * (100 - len(b"agi_arg_1: ") - 2) + b"\n\n"
    assert len(line) == 100
    parser = AgiHeaderParser(max_size=100)
    parser.feed(line + b"200 result=0\n")
    assert parser.complete
    assert parser.leftover == b"200 result=0\n"


@pytest.mark.parametrize(
    "line",
    [b"GET / HTTP/1.1\n", b"no colon here\n", b"bad key: x\n", b": empty key\n"],
)
def test_malformed_header_line_is_rejected(line: bytes) -> None:
    with pytest.raises(AgiProtocolError):
        AgiHeaderParser().feed(line)


def test_duplicate_header_key_is_rejected() -> None:
    parser = AgiHeaderParser()
    with pytest.raises(AgiProtocolError, match="duplicate"):
        parser.feed(b"agi_extension: 100\nagi_extension: 999\n\n")


# --- replies ----------------------------------------------------------------


def test_200_with_timeout_data_and_endpos() -> None:
    parser = AgiReplyParser()
    parser.feed(b"200 result=1 (timeout) endpos=1234\n")
    reply = parser.next_event()
    assert reply == AgiReply(
        code=200,
        result="1",
        data="timeout",
        endpos=1234,
        raw="200 result=1 (timeout) endpos=1234",
    )
    assert isinstance(reply, AgiReply)
    assert reply.result_int == 1
    assert parser.next_event() is None


@pytest.mark.parametrize(
    ("line", "result", "data", "endpos"),
    [
        (b"200 result=0\n", "0", None, None),
        (b"200 result=-1 endpos=0\n", "-1", None, 0),
        (b"200 result=49 endpos=16000\n", "49", None, 16000),
        (b"200 result= (timeout)\n", "", "timeout", None),
        (b"200 result=123 (timeout)\n", "123", "timeout", None),
        (b"200 result=1 (hello world)\n", "1", "hello world", None),
        (b"200 result=1 ()\n", "1", "", None),
        # A variable value containing parentheses stays whole.
        (b"200 result=1 (a (b) c)\n", "1", "a (b) c", None),
        (b"200 result=1 (x) endpos=3)\n", "1", "x) endpos=3", None),
        (b"200 result=0 (dtmf) endpos=8000\r\n", "0", "dtmf", 8000),
        (b"200 result=1 (\xe5\xb8\x82)\n", "1", "市", None),
    ],
)
def test_200_variants(line: bytes, result: str, data: str | None, endpos: int | None) -> None:
    parser = AgiReplyParser()
    parser.feed(line)
    reply = parser.next_event()
    assert isinstance(reply, AgiReply)
    assert (reply.code, reply.result, reply.data, reply.endpos) == (200, result, data, endpos)


def test_result_int_is_none_for_non_numeric_result() -> None:
    parser = AgiReplyParser()
    parser.feed(b"200 result= (timeout)\n")
    reply = parser.next_event()
    assert isinstance(reply, AgiReply)
    assert reply.result_int is None


def test_510_and_511() -> None:
    events = feed_in_chunks(
        b"510 Invalid or unknown command\n"
        b"511 Command Not Permitted on a dead channel or intercept routine\n",
        5,
    )
    assert [(e.code, e.raw) for e in events if isinstance(e, AgiReply)] == [
        (510, "510 Invalid or unknown command"),
        (511, "511 Command Not Permitted on a dead channel or intercept routine"),
    ]
    assert len(events) == 2


@pytest.mark.parametrize("size", [1, 3, 17, len(USAGE_REPLY)])
def test_multiline_520_is_one_reply(size: int) -> None:
    events = feed_in_chunks(USAGE_REPLY + b"200 result=1\n", size)
    assert len(events) == 2
    usage, after = events
    assert isinstance(usage, AgiReply)
    assert usage.code == 520
    assert usage.data == (
        " Usage: GET DATA <file to be streamed> [timeout] [maxdigits]\n"
        "\n"
        "Stream the given file, and receive DTMF data."
    )
    assert usage.raw.splitlines()[0] == "520-Invalid command syntax.  Proper usage follows:"
    assert usage.raw.splitlines()[-1] == "520 End of proper usage."
    assert isinstance(after, AgiReply)
    assert (after.code, after.result) == (200, "1")


def test_partial_520_yields_nothing_until_terminator() -> None:
    parser = AgiReplyParser()
    parser.feed(USAGE_REPLY[:-5])
    assert parser.next_event() is None
    parser.feed(USAGE_REPLY[-5:])
    reply = parser.next_event()
    assert isinstance(reply, AgiReply)
    assert reply.code == 520


def test_single_line_520() -> None:
    parser = AgiReplyParser()
    parser.feed(b"520 Invalid command syntax.  Proper usage not available.\n")
    reply = parser.next_event()
    assert isinstance(reply, AgiReply)
    assert (reply.code, reply.data) == (520, None)


@pytest.mark.parametrize("size", [1, 4, 1000])
def test_hangup_line_between_replies(size: int) -> None:
    events = feed_in_chunks(
        b"200 result=0\nHANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n",
        size,
    )
    assert len(events) == 3
    first, hangup, dead = events
    assert isinstance(first, AgiReply) and first.code == 200
    assert hangup == Hangup()
    assert isinstance(dead, AgiReply) and dead.code == 511


def test_reply_bytewise_with_hangup_first() -> None:
    events = feed_in_chunks(b"HANGUP\r\n200 result=1 (v)\n", 1)
    assert events[0] == Hangup()
    assert isinstance(events[1], AgiReply)
    assert events[1].data == "v"


def test_stray_empty_line_is_ignored() -> None:
    events = feed_in_chunks(b"\n200 result=1\n", 100)
    assert len(events) == 1


@pytest.mark.parametrize("line", [b"garbage\n", b"20 result=1\n", b"200 ok\n", b"hangup\n"])
def test_malformed_reply_is_rejected(line: bytes) -> None:
    parser = AgiReplyParser()
    parser.feed(line)
    with pytest.raises(AgiProtocolError):
        parser.next_event()


def test_oversize_reply_is_rejected() -> None:
    parser = AgiReplyParser(max_size=64)
    parser.feed(b"200 result=1 (" + b"x" * 64)
    with pytest.raises(AgiProtocolError, match="exceeds"):
        parser.next_event()


def test_oversize_520_block_is_rejected() -> None:
    parser = AgiReplyParser(max_size=64)
    parser.feed(b"520-Invalid command syntax.  Proper usage follows:\n" + b"usage line\n" * 5)
    with pytest.raises(AgiProtocolError, match="exceeds"):
        parser.next_event()


# --- raise_for_reply --------------------------------------------------------


def parse_one(data: bytes) -> AgiReply:
    parser = AgiReplyParser()
    parser.feed(data)
    reply = parser.next_event()
    assert isinstance(reply, AgiReply)
    return reply


def test_raise_for_reply_passes_success_through() -> None:
    reply = parse_one(b"200 result=1\n")
    assert raise_for_reply(reply) is reply


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"200 result=-1 endpos=0\n", AgiCommandFailed),
        (b"510 Invalid or unknown command\n", AgiInvalidCommand),
        (b"511 Command Not Permitted on a dead channel or intercept routine\n", AgiHangup),
        (b"520 Invalid command syntax.  Proper usage not available.\n", AgiUsageError),
        (b"503 result=-2 Memory allocation failure\n", AgiProtocolError),
    ],
)
def test_raise_for_reply_maps_codes(data: bytes, error: type[Exception]) -> None:
    reply = parse_one(data)
    with pytest.raises(error) as info:
        raise_for_reply(reply)
    assert getattr(info.value, "reply", None) is reply


def test_usage_error_keeps_usage_text() -> None:
    reply = parse_one(USAGE_REPLY)
    with pytest.raises(AgiUsageError) as info:
        raise_for_reply(reply)
    assert "Stream the given file" in info.value.usage
    assert "520" not in info.value.usage


# --- format_command ---------------------------------------------------------


def test_format_command_quotes_every_argument() -> None:
    assert format_command("ANSWER") == b"ANSWER\n"
    assert format_command("STREAM FILE", "welcome", "") == b'STREAM FILE "welcome" ""\n'
    assert format_command("GET DATA", "prompt", "5000", "1") == b'GET DATA "prompt" "5000" "1"\n'
    assert format_command("EXEC", "MixMonitor", "/path/x.wav,b") == (
        b'EXEC "MixMonitor" "/path/x.wav,b"\n'
    )


def test_format_command_escapes_quotes_and_backslashes() -> None:
    line = format_command("SET VARIABLE", "NAME", 'say "hi" \\o/ and spaces')
    assert line == b'SET VARIABLE "NAME" "say \\"hi\\" \\\\o/ and spaces"\n'


def test_format_command_encodes_utf8() -> None:
    assert format_command("VERBOSE", "市民", "1") == 'VERBOSE "市民" "1"\n'.encode()


@pytest.mark.parametrize(
    "value",
    ["x\nEXEC System rm", "x\rEXEC System rm", "a\r\nb", "trunc\x00ated", "\n"],
)
def test_format_command_rejects_line_breaks_and_nul(value: str) -> None:
    with pytest.raises(AgiProtocolError):
        format_command("SET VARIABLE", "NAME", value)


@pytest.mark.parametrize(
    "command",
    ["", "STREAM FILE\nEXEC", 'EXEC "x"', " ANSWER", "ANSWER ", "GET  DATA", "SAY 1"],
)
def test_format_command_rejects_bad_command_names(command: str) -> None:
    with pytest.raises(AgiProtocolError):
        format_command(command)


def test_format_command_requires_a_command() -> None:
    with pytest.raises(AgiProtocolError):
        format_command()


def test_format_command_rejects_lines_asterisk_would_split() -> None:
    overhead = len(b'VERBOSE ""\n')
    assert len(format_command("VERBOSE", "x" * (MAX_COMMAND_LINE - overhead))) == MAX_COMMAND_LINE
    with pytest.raises(AgiProtocolError, match="longer"):
        format_command("VERBOSE", "x" * (MAX_COMMAND_LINE - overhead + 1))


def _parse_args_like_asterisk(line: str) -> list[str]:
    # Mirror of res_agi's parse_args(), to check quoting round-trips.
    args: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:
                cur = []
                args.append("")
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                args[-1] = "".join(cur)
            cur = None
            continue
        if cur is None:
            cur = []
            args.append("")
        cur.append(ch)
        escaped = False
    if cur is not None:
        args[-1] = "".join(cur)
    return args


@pytest.mark.parametrize(
    "value", ["", "plain", "two words", 'q"uote', "back\\slash", '\\"', "end\\", '"', "tab\there"]
)
def test_quoting_round_trips_through_asterisk_parser(value: str) -> None:
    line = format_command("SET VARIABLE", "V", value).decode().rstrip("\n")
    assert _parse_args_like_asterisk(line) == ["SET", "VARIABLE", "V", value]
