"""BIP39 mnemonics and BIP32 derivation (gonka_cli.keys.hd) against published vectors."""

from __future__ import annotations

import hashlib

import pytest

from gonka_cli.errors import UsageError
from gonka_cli.keys import SigningKey, hd
from tests import vectors as v

# BIP32 test vectors 1 to 3, copied from bip-0032.mediawiki ("Test Vectors"); never regenerated.
BIP32_VECTORS: list[tuple[str, list[tuple[str, str, str]]]] = [
    (
        "000102030405060708090a0b0c0d0e0f",
        [
            (
                "m",
                "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8",
                "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi",
            ),
            (
                "m/0H",
                "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw",
                "xprv9uHRZZhk6KAJC1avXpDAp4MDc3sQKNxDiPvvkX8Br5ngLNv1TxvUxt4cV1rGL5hj6KCesnDYUhd7oWgT11eZG7XnxHrnYeSvkzY7d2bhkJ7",
            ),
            (
                "m/0H/1",
                "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ",
                "xprv9wTYmMFdV23N2TdNG573QoEsfRrWKQgWeibmLntzniatZvR9BmLnvSxqu53Kw1UmYPxLgboyZQaXwTCg8MSY3H2EU4pWcQDnRnrVA1xe8fs",
            ),
            (
                "m/0H/1/2H",
                "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5",
                "xprv9z4pot5VBttmtdRTWfWQmoH1taj2axGVzFqSb8C9xaxKymcFzXBDptWmT7FwuEzG3ryjH4ktypQSAewRiNMjANTtpgP4mLTj34bhnZX7UiM",
            ),
            (
                "m/0H/1/2H/2",
                "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV",
                "xprvA2JDeKCSNNZky6uBCviVfJSKyQ1mDYahRjijr5idH2WwLsEd4Hsb2Tyh8RfQMuPh7f7RtyzTtdrbdqqsunu5Mm3wDvUAKRHSC34sJ7in334",
            ),
            (
                "m/0H/1/2H/2/1000000000",
                "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy",
                "xprvA41z7zogVVwxVSgdKUHDy1SKmdb533PjDz7J6N6mV6uS3ze1ai8FHa8kmHScGpWmj4WggLyQjgPie1rFSruoUihUZREPSL39UNdE3BBDu76",
            ),
        ],
    ),
    (
        "fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a29f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542",
        [
            (
                "m",
                "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB",
                "xprv9s21ZrQH143K31xYSDQpPDxsXRTUcvj2iNHm5NUtrGiGG5e2DtALGdso3pGz6ssrdK4PFmM8NSpSBHNqPqm55Qn3LqFtT2emdEXVYsCzC2U",
            ),
            (
                "m/0",
                "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH",
                "xprv9vHkqa6EV4sPZHYqZznhT2NPtPCjKuDKGY38FBWLvgaDx45zo9WQRUT3dKYnjwih2yJD9mkrocEZXo1ex8G81dwSM1fwqWpWkeS3v86pgKt",
            ),
            (
                "m/0/2147483647H",
                "xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a",
                "xprv9wSp6B7kry3Vj9m1zSnLvN3xH8RdsPP1Mh7fAaR7aRLcQMKTR2vidYEeEg2mUCTAwCd6vnxVrcjfy2kRgVsFawNzmjuHc2YmYRmagcEPdU9",
            ),
            (
                "m/0/2147483647H/1",
                "xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon",
                "xprv9zFnWC6h2cLgpmSA46vutJzBcfJ8yaJGg8cX1e5StJh45BBciYTRXSd25UEPVuesF9yog62tGAQtHjXajPPdbRCHuWS6T8XA2ECKADdw4Ef",
            ),
            (
                "m/0/2147483647H/1/2147483646H",
                "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL",
                "xprvA1RpRA33e1JQ7ifknakTFpgNXPmW2YvmhqLQYMmrj4xJXXWYpDPS3xz7iAxn8L39njGVyuoseXzU6rcxFLJ8HFsTjSyQbLYnMpCqE2VbFWc",
            ),
            (
                "m/0/2147483647H/1/2147483646H/2",
                "xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt",
                "xprvA2nrNbFZABcdryreWet9Ea4LvTJcGsqrMzxHx98MMrotbir7yrKCEXw7nadnHM8Dq38EGfSh6dqA9QWTyefMLEcBYJUuekgW4BYPJcr9E7j",
            ),
        ],
    ),
    (
        "4b381541583be4423346c643850da4b320e46a87ae3d2a4e6da11eba819cd4acba45d239319ac14f863b8d5ab5a0d0c64d2e8a1e7d1457df2e5a3c51c73235be",
        [
            (
                "m",
                "xpub661MyMwAqRbcEZVB4dScxMAdx6d4nFc9nvyvH3v4gJL378CSRZiYmhRoP7mBy6gSPSCYk6SzXPTf3ND1cZAceL7SfJ1Z3GC8vBgp2epUt13",
                "xprv9s21ZrQH143K25QhxbucbDDuQ4naNntJRi4KUfWT7xo4EKsHt2QJDu7KXp1A3u7Bi1j8ph3EGsZ9Xvz9dGuVrtHHs7pXeTzjuxBrCmmhgC6",
            ),
            (
                "m/0H",
                "xpub68NZiKmJWnxxS6aaHmn81bvJeTESw724CRDs6HbuccFQN9Ku14VQrADWgqbhhTHBaohPX4CjNLf9fq9MYo6oDaPPLPxSb7gwQN3ih19Zm4Y",
                "xprv9uPDJpEQgRQfDcW7BkF7eTya6RPxXeJCqCJGHuCJ4GiRVLzkTXBAJMu2qaMWPrS7AANYqdq6vcBcBUdJCVVFceUvJFjaPdGZ2y9WACViL4L",
            ),
        ],
    ),
]
CASES = [(seed, *chain) for seed, chains in BIP32_VECTORS for chain in chains]

# BIP39 reference vectors (trezor/python-mnemonic vectors.json, "english", passphrase "TREZOR").
BIP39_12 = "abandon " * 11 + "about"
BIP39_12_SEED = (
    "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e5349553"
    "1f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"
)
BIP39_24 = "abandon " * 23 + "art"
BIP39_24_SEED = (
    "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd30971"
    "70af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8"
)

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def _base58check(text: str) -> bytes:
    """Decode Base58Check (test helper: reads the spec's extended keys)."""
    number = 0
    for char in text:
        number = number * 58 + _B58.index(char)
    raw = number.to_bytes(82, "big").lstrip(b"\0")
    payload, checksum = raw[:-4], raw[-4:]
    assert hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == checksum
    return payload


@pytest.mark.parametrize(("seed", "path", "xpub", "xprv"), CASES)
def test_bip32_official_vectors(seed: str, path: str, xpub: str, xprv: str) -> None:
    """Each chain of BIP32 test vectors 1-3 gives the spec's chain code, private and public key."""
    expected_prv = _base58check(xprv)
    expected_pub = _base58check(xpub)
    derived = hd.derive_path(bytes.fromhex(seed), path)
    assert derived.chain_code == expected_prv[13:45]
    assert expected_prv[45] == 0
    assert derived.secret == expected_prv[46:78]
    assert derived.public_key == expected_pub[45:78]


def test_protocol_mnemonic_vector_gonka_coin_type() -> None:
    """docs/protocol.md 8: the test mnemonic at m/44'/1200'/0'/0/0 gives the published key."""
    secret = hd.secret_from_mnemonic(v.MNEMONIC)
    key = SigningKey.from_secret(secret)
    assert hd.DEFAULT_PATH == "m/44'/1200'/0'/0/0"
    assert secret.hex() == v.PRIVATE_KEY_HEX
    assert key.public_key_b64 == v.PRIVATE_KEY_PUBKEY_B64
    assert key.address == v.PRIVATE_KEY_ADDRESS


def test_protocol_mnemonic_vector_cosmos_coin_type() -> None:
    """docs/protocol.md 8: the same words at coin type 118 give the other published address."""
    secret = hd.secret_from_mnemonic(v.MNEMONIC, hd.bip44_path(hd.COSMOS_COIN_TYPE))
    assert SigningKey.from_secret(secret).address == v.COSMOS_118_ADDRESS


@pytest.mark.parametrize(("words", "seed"), [(BIP39_12, BIP39_12_SEED), (BIP39_24, BIP39_24_SEED)])
def test_bip39_seed_reference_vectors(words: str, seed: str) -> None:
    """The BIP39 seed, with a passphrase, matches the reference implementation's vectors."""
    assert hd.mnemonic_to_seed(words, "TREZOR").hex() == seed


def test_bip39_passphrase_changes_the_key() -> None:
    """An optional BIP39 passphrase derives a different key from the same words."""
    assert hd.secret_from_mnemonic(v.MNEMONIC, passphrase="x").hex() != v.PRIVATE_KEY_HEX


def test_mnemonic_is_normalized_before_use() -> None:
    """Upper case, newlines and repeated spaces do not change the derived key."""
    messy = "  " + v.MNEMONIC.upper().replace(" ", " \n  ", 3) + "\n"
    assert hd.secret_from_mnemonic(messy).hex() == v.PRIVATE_KEY_HEX


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "has 0 words"),
        ("test " * 11, "has 11 words"),
        ("test " * 13, "has 13 words"),
        ("test test testx test test test test test test test test junk", "word 3 is not"),
        ("qqq test test test test test test test test test test zzz", "words 1, 12 are not"),
        ("test test test test test test test test test test test test", "checksum"),
        ("junk test test test test test test test test test test test", "checksum"),
    ],
)
def test_bad_mnemonics_say_what_is_wrong_without_the_words(text: str, problem: str) -> None:
    """Wrong length, unknown word (by position) and bad checksum are named; no word is echoed."""
    with pytest.raises(UsageError) as caught:
        hd.check_mnemonic(text)
    message = caught.value.message
    assert problem in message
    for word in ("test", "testx", "qqq", "zzz", "junk"):
        assert word not in message


def test_generated_mnemonics_are_24_valid_fresh_words() -> None:
    """A new mnemonic has 24 words, passes its own checksum and differs each time."""
    first, second = hd.generate_mnemonic(), hd.generate_mnemonic()
    assert len(first.split()) == 24
    assert hd.check_mnemonic(first) == first
    assert first != second


@pytest.mark.parametrize(
    ("path", "indexes"),
    [
        ("m/44'/1200'/0'/0/0", (44 + hd.HARDENED, 1200 + hd.HARDENED, hd.HARDENED, 0, 0)),
        ("m/0H/1/2h", (hd.HARDENED, 1, 2 + hd.HARDENED)),
        ("44'/118'/3'/0/7", (44 + hd.HARDENED, 118 + hd.HARDENED, 3 + hd.HARDENED, 0, 7)),
        ("m", ()),
    ],
)
def test_parse_path_forms(path: str, indexes: tuple[int, ...]) -> None:
    """Paths take ', h or H for hardened steps, with or without the leading m."""
    assert hd.parse_path(path) == indexes


@pytest.mark.parametrize("path", ["m/44'/x/0", "m//0", "m/-1", "m/2147483648", "m/44''", "n/0"])
def test_parse_path_rejects_malformed_paths(path: str) -> None:
    """A malformed step or an index at or above 2^31 is a usage error."""
    with pytest.raises(UsageError, match="HD path"):
        hd.parse_path(path)


def test_bip44_path_and_its_range() -> None:
    """--coin-type/--account/--index build the BIP44 path; out-of-range numbers are refused."""
    assert hd.bip44_path(118, 2, 5) == "m/44'/118'/2'/0/5"
    with pytest.raises(UsageError, match="index"):
        hd.bip44_path(index=-1)
    with pytest.raises(UsageError, match="coin type"):
        hd.bip44_path(coin_type=hd.HARDENED)
