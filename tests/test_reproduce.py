"""A failed clause prints a curl command that sends the same request again (as Schemathesis
does), its token masked: put the token back and the command reproduces the answer."""

from __future__ import annotations

import subprocess

import requests

from contract_tests.clauses import SHOWN_BODY, Violation, curl_command
from contract_tests.forms import Part, multipart
from mockserver.testing import InProcessServer
from mockserver.tokens import DEMO_ACCOUNTS

FREE = DEMO_ACCOUNTS[0]
BOUNDARY = "repro-boundary"


def _send_again(command: str, token: str) -> str:
    """Run the printed command with the real token put back; curl's -i output."""
    runnable = command.replace(FREE.token[:11] + "…", token)
    done = subprocess.run(["sh", "-c", runnable], capture_output=True, timeout=30, check=True)
    return done.stdout.decode("utf-8", "replace")


def test_the_command_sends_the_same_bytes_and_gets_the_same_answer() -> None:
    body = multipart(
        [Part("file", b"\x89PNG\r\n'quoted' \\ \x00\xff", "a b'.png", "image/jpg")], BOUNDARY
    )
    with InProcessServer() as server:
        sent = requests.post(
            server.base_url + "/ocr",
            data=body,
            headers={
                "Authorization": f"Bearer {FREE.token}",
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            },
            timeout=10,
        )
        command = curl_command(sent.request)
        assert FREE.token not in command  # masked
        again = _send_again(command, FREE.token)
    assert again.startswith("HTTP/1.1 400")
    assert again.rstrip().endswith(sent.text.rstrip())  # "Unsupported file type: image/jpg..."


def test_a_large_body_is_named_not_written_out() -> None:
    prepared = requests.Request(
        "POST", "http://127.0.0.1:9/api/v1/ocr", data=b"x" * (SHOWN_BODY + 1)
    ).prepare()
    assert f"@body.bin  # its {SHOWN_BODY + 1:,}-byte body" in curl_command(prepared)


def test_a_violation_ends_with_the_command() -> None:
    prepared = requests.Request(
        "POST", "http://127.0.0.1:9/api/v1/ocr", headers={"Authorization": f"Bearer {FREE.token}"}
    ).prepare()
    message = str(Violation("auth.x", "POST /ocr", ["status: expected 401"], "200", prepared))
    assert message.splitlines()[-1].startswith("  reproduce: curl -i -X POST ")
    assert "Bearer itsocr_Free…" in message
    assert FREE.token not in message
