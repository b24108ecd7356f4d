"""The header parser nats-py is given (shared.bus.nats_fixes) reads what the e-mail parser it replaces read."""
from email.parser import BytesParser

import nats.aio.client
import pytest

from shared.bus import jetstream  # noqa: F401  (importing the bus applies the fixes)
from shared.bus.nats_fixes import HeaderParser

SAMPLES = [
    b"Nats-Msg-Id: 01JD5Y8Q\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n",
    b"Nats-Stream: lianfang\r\nNats-Subject: lf.ev.510104-xfj.C1\r\nNats-Sequence: 1042\r\n"
    b"Nats-Time-Stamp: 2026-11-29T23:30:01.123456789Z\r\nNats-Num-Pending: 3\r\n\r\n",
    b"Nats-Last-Consumer: 7\r\nNats-Last-Stream: 1024\r\n\r\n",
    b"X-Padded:   padded value  \r\nX-Repeated: first\r\nX-Repeated: last\r\n\r\n",
    b"Only-One: v\r\n\r\n",
]


@pytest.mark.parametrize("raw", SAMPLES)
def test_the_header_parser_reads_what_the_email_parser_read(raw):
    expected = {k.strip(): v.strip() for k, v in BytesParser().parsebytes(raw).items()}
    assert HeaderParser().parsebytes(raw) == expected


def test_a_line_without_a_colon_is_skipped_and_a_colon_in_a_value_is_kept():
    got = HeaderParser().parsebytes(b"garbage line\r\nReason: a: b\r\n\r\n")
    assert got == {"Reason": "a: b"}


def test_nats_clients_are_made_with_it():
    assert isinstance(nats.aio.client.Client()._hdr_parser, HeaderParser)
