"""Known-answer vectors, copied from docs/protocol.md section 8 (never regenerated)."""

PUBKEY_B64 = "Au5ZQav3E36PZpGta2xUa8r9xEEo9Biph3fG5i3qaeSG"
PUBKEY_ADDRESS = "gonka1jwrv4q8hpxc354pr87pt0pkulaep67e9s4z0ym"

MNEMONIC = "test test test test test test test test test test test junk"
PRIVATE_KEY_HEX = "480293bb12c956967e64c039801ed48ead6b56d34bd5f985ed53f70755d5a3ad"
PRIVATE_KEY_PUBKEY_B64 = "Aq34YxWjv8DgH6h4UaqDNYVGs/qmxHLxzlNX+dMWdKzP"
PRIVATE_KEY_ADDRESS = "gonka1vcqc3gcyu3j937nz7kyvmhwxgqctp88xsq5qlw"
COSMOS_118_ADDRESS = "gonka15yk64u7zc9g9k2yr2wmzeva5qgwxps6yk8g37u"

BODY = (
    b'{"model":"Qwen/Qwen2.5-7B-Instruct","messages":[{"role":"user","content":"Hello!"}],'
    b'"max_tokens":128}'
)
TIMESTAMP = 1700000000000000000
TRANSFER_ADDRESS = PUBKEY_ADDRESS
BODY_SHA256 = "fb45dd94ec9f614f4d250550d6d7ee1094ff5597763e490c12fcedc6bbe89e58"
SIG_HASH = (
    "NOfbpUE1Lx0FKCj/nBrJ3+jqUIDRf/z5+3U65wDtm7t2d+DuTbKgZbl9MVU347wihm005m0mZnvUB8aI98sSgw=="
)
SIG_HASH_HIGH_S = (
    "NOfbpUE1Lx0FKCj/nBrJ3+jqUIDRf/z5+3U65wDtm7uJiB8Rsk1fmkaCzqrIHEPcNEGoAEIiOb/rypgD2Gsuvg=="
)
SIG_RAW = "3CWtFrGBq4fbGNWmvRBPQBS/wE1MIKeZA5APkmnHyIskUK+oWuYhz/7ezd5o6NeO0C9j28bDVv/Aj/R9E0a1Sg=="
