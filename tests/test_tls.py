"""Brokers over HTTPS: the certificate is verified, against SSL_CERT_FILE when it is set.

A local HTTPS broker on 127.0.0.1 presents a self-signed certificate made here; a
`gonka send-request` process trusts it only when SSL_CERT_FILE names it.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gonka_cli.errors import ExitCode

API_KEY = "sk-tls-test"
ANSWER = {
    "id": "chatcmpl-tls",
    "object": "chat.completion",
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "over TLS"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
}


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, signed by its own key: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gonka-cli test broker")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Broker(BaseHTTPRequestHandler):
    """Answers a chat request carrying the right Bearer key; records what it saw."""

    seen: list[str]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.seen.append(self.headers.get("Authorization", ""))
        ok = self.path == "/v1/chat/completions" and self.seen[-1] == f"Bearer {API_KEY}"
        payload = json.dumps(ANSWER if ok else {"error": {"message": "no"}}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client refusing the certificate is expected here: no traceback."""


@pytest.fixture
def https_broker(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """(base URL, certificate file, Authorization headers seen) of a local HTTPS broker."""
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    seen: list[str] = []
    handler = type("Broker", (_Broker,), {"seen": seen})
    server = _QuietServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/v1", cert, seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _send(base_url: str, home: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GONKA_", "SSL_CERT_"))}
    env |= {"GONKA_HOME": str(home), "GONKA_BROKER_API_KEY": API_KEY, **extra_env}
    body = '{"model": "m", "messages": [{"role": "user", "content": "hi"}]}'
    argv = [sys.executable, "-m", "gonka_cli", "send-request", "--auth", "bearer",
            "--base-url", base_url, "--max-retries", "0", body]  # fmt: skip
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_ssl_cert_file_is_trusted_for_an_https_broker(
    https_broker: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    """SSL_CERT_FILE naming the broker's certificate: verified, sent, answered."""
    url, cert, seen = https_broker
    done = _send(url, tmp_path / "home", SSL_CERT_FILE=str(cert))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "over TLS"
    assert seen == [f"Bearer {API_KEY}"]


def test_an_untrusted_certificate_is_refused_before_anything_is_sent(
    https_broker: tuple[str, Path, list[str]], tmp_path: Path
) -> None:
    """Without SSL_CERT_FILE the self-signed certificate fails verification: exit 6, one line."""
    url, _, seen = https_broker
    done = _send(url, tmp_path / "home")
    assert done.returncode == ExitCode.NETWORK
    assert "CERTIFICATE_VERIFY_FAILED" in done.stderr
    assert "Traceback" not in done.stderr
    assert seen == []
