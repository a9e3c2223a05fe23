"""`gonka_cli.redact`: what is removed from everything printed or stored, and what stays."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mnemonic import Mnemonic

from gonka_cli import redact as r

WORDS = Mnemonic("english").wordlist
API_KEY = "sk-live-Zq81TmR4xW0pN7vB2cD5"
HEX_KEY = "4f3c2b1a" * 8


@pytest.fixture(autouse=True)
def _no_known_secrets() -> Iterator[None]:
    """Each test starts and ends with no registered secret."""
    r.forget_all()
    yield
    r.forget_all()


@pytest.mark.parametrize("length", [39, 40, 63, 64, 65, 128])
@pytest.mark.parametrize("prefix", ["", "0x"])
def test_hex_runs_of_40_or_more_are_redacted(length: int, prefix: str) -> None:
    """39 hex digits stay (ids, short hashes); 40 and more are key-shaped."""
    digits = ("0123456789abcdefABCDEF" * 10)[:length]
    redacted = r.redact(f"no key named '{prefix}{digits}'")
    if length < 40:
        assert redacted == f"no key named '{prefix}{digits}'"
    else:
        assert redacted == "no key named '<redacted>'"


@pytest.mark.parametrize("count", range(11, 25))
def test_twelve_or_more_bip39_words_are_redacted(count: int) -> None:
    """11 words of the list stay; 12 to 24 in a row (spaces or commas) are mnemonic-shaped."""
    words = [WORDS[(i * 37) % 2048] for i in range(count)]
    for joined in (" ".join(words), ", ".join(words), "\n".join(words).upper()):
        redacted = r.redact(f"bad key name: {joined}.")
        assert redacted == (
            "bad key name: <redacted>." if count >= 12 else f"bad key name: {joined}."
        )


def test_a_word_outside_the_list_breaks_the_run() -> None:
    """Twelve list words split by one other word are two short runs: nothing goes."""
    text = " ".join(WORDS[:6]) + " the " + " ".join(WORDS[6:12])
    assert r.redact(text) == text
    assert r.looks_secret(" ".join(WORDS[:12]))
    assert not r.looks_secret(text)


def test_known_secrets_whole_or_in_pieces_of_eight() -> None:
    """A registered API key goes whole and in any 8-character piece; 7 characters stay."""
    r.register(API_KEY)
    assert r.redact(f"Incorrect API key provided: {API_KEY}.") == "Incorrect API key provided: ***."
    for start in range(len(API_KEY) - 8):
        piece = API_KEY[start : start + 8]
        assert r.redact(f"[{piece}]") == "[***]"
    assert r.redact(f"[{API_KEY[3:10]}]") == f"[{API_KEY[3:10]}]"


def test_a_signing_key_goes_in_any_case_and_piece() -> None:
    """The signing key's hex: upper case, 0x form, and 8-character pieces all go."""
    r.register_hex_key(HEX_KEY)
    assert r.redact("k=0X" + HEX_KEY.upper()) == "k=0X***"
    assert r.redact(f"tail {HEX_KEY[17:30]} end") == "tail *** end"
    assert r.scrub_data({"a": [f"x{HEX_KEY[:9]}"]}) == {"a": ["x***"]}


def test_url_user_info_and_bearer_tokens() -> None:
    """User-info in any URL and a Bearer token become ***; ordinary words stay."""
    text = "could not connect to http://alice:pw@host:8000/v1 (https://tok@h/x)"
    assert r.redact(text) == "could not connect to http://***@host:8000/v1 (https://***@h/x)"
    assert r.redact("sent Authorization: Bearer abcdefgh12345") == "sent Authorization: Bearer ***"
    assert r.redact("pass --auth bearer (a broker)") == "pass --auth bearer (a broker)"


@pytest.mark.parametrize(
    "escape",
    [
        "\x1b]0;pwned\x07",  # OSC window title, BEL-terminated
        "\x1b]8;;http://evil/\x1b\\",  # OSC hyperlink, ST-terminated
        "\x1b[2J",  # clear screen
        "\x1b[31;1m",  # colour
        "\x9b2J",  # 8-bit CSI
        "\x9d0;t\x9c",  # 8-bit OSC
        "\x07\x08\x00\x7f\x85",  # BEL, BS, NUL, DEL, NEL
        "\u202e",  # right-to-left override
    ],
)
def test_terminal_escapes_are_stripped(escape: str) -> None:
    """Escape sequences go whole; tab and newline stay; the text around is kept."""
    assert r.redact(f"bad{escape}\tthing\n") == "bad\tthing\n"
    assert r.plain(f"a{escape}b", newlines=False) == "ab"


def test_data_keeps_everything_but_the_known_secrets() -> None:
    """Answers keep hashes and words (only registered secrets go); messages lose both."""
    digest = "ab" * 32
    answer = {"content": f"sha256 {digest}", "words": " ".join(WORDS[:12])}
    assert r.scrub_data(answer) == answer
    assert r.scrub_data({"c": "a\x9b2Jb\x1b"}) == {"c": "a2Jb\x1b"}  # JSON escapes ESC
    r.register(API_KEY)
    assert r.scrub_data({"echo": API_KEY, "n": 1}) == {"echo": "***", "n": 1}
    assert r.redact_data({"error": {"message": f"{digest}"}}) == {
        "error": {"message": "<redacted>"}
    }


def test_short_messages_do_not_load_the_word_list() -> None:
    """Start-up stays lean: redacting ordinary messages, long hints included, never
    imports `mnemonic` (only a run of twelve 3-to-8-letter words can be a mnemonic)."""
    hint = (
        "for a broker or gateway set GONKA_BROKER_API_KEY (or --api-key-file PATH); for a "
        "transfer agent pass --key NAME (a key from `gonka keys add`) or set GONKA_PRIVATE_KEY"
    )
    code = (
        "import sys; from gonka_cli.redact import redact; "
        f"redact('no key named demo; see http://a@b/ and ' + 'ab' * 32); redact({hint!r}); "
        "print('mnemonic' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_every_json_output_and_table_goes_through_the_step() -> None:
    """`render.print_json` drops the secrets in use and C1 controls; `print_table` cells and
    notices lose terminal escapes (server text shown by any command)."""
    import io

    from gonka_cli.render import make_consoles, notice, print_json, print_table

    r.register(API_KEY)
    out, err = io.StringIO(), io.StringIO()
    consoles = make_consoles(out, err)
    print_json(consoles.out, {"echo": f"key {API_KEY}", "c1": "a\x9b2Jb"})
    print_table(consoles.out, ["URL"], [["http://h\x1b]0;t\x07/v1"]])
    notice(consoles.err, f"moved to http://u:p@h/\x1b[2J with {API_KEY}", "warning")
    assert out.getvalue() == '{"echo": "key ***", "c1": "a2Jb"}\nURL\nhttp://h/v1\n'
    assert err.getvalue() == "warning: moved to http://***@h/ with ***\n"


_HEXCHARS = "0123456789abcdef"


@settings(max_examples=200, deadline=None)
@given(
    key=st.text(alphabet=_HEXCHARS, min_size=64, max_size=64),
    api=st.text(alphabet=_HEXCHARS + "ghijklmnopqrstuvwxyzABCXYZ-_", min_size=8, max_size=60),
    cuts=st.lists(st.tuples(st.integers(0, 63), st.integers(8, 64), st.booleans()), max_size=4),
    filler=st.text(max_size=40),
)
def test_no_piece_of_a_registered_secret_survives(
    key: str, api: str, cuts: list[tuple[int, int, bool]], filler: str
) -> None:
    """Whatever pieces (8 or more characters, hex in any case) of the key and the API key a
    text holds, none is left after scrub_data or redact: the fast pre-check never lets one
    through."""
    r.forget_all()
    r.register_hex_key(key)
    r.register(api)
    parts = [filler]
    for start, length, upper in cuts:
        piece = key[start : start + length]
        parts += [piece.upper() if upper else piece, filler, api[start % len(api) :], filler]
    text = " ".join(parts)
    nested = r.scrub_data({"choices": [{"content": text, text[:9]: filler}]})
    for cleaned in (r.scrub_data(text), r.redact(text), repr(nested)):
        lowered = cleaned.lower()
        assert not any(key[i : i + 8] in lowered for i in range(57))
        assert not any(api[i : i + 8] in cleaned for i in range(len(api) - 7))
