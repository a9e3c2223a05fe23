"""The dev node's fixed vocabularies, with no imports: the command line reads them for
its option defaults without loading the node (or coincurve) at start-up."""

MODES = ("ta", "gateway", "retired")
SCHEMES = ("hash", "raw", "both")
FAULT_KINDS = ("429", "500", "503", "drop", "cut", "slow")
# Only in gateway mode, and never among the defaults: "seed" answers 503
# height_seed_incomplete (devshard v5), which a client should retry with backoff.
GATEWAY_FAULT_KINDS = ("seed",)
PARTICIPANTS_SHAPES = ("chain", "sdk")
DEFAULT_MODELS = ("Qwen/QwQ-32B", "echo")
MAX_PARTICIPANTS = 64
# What keeps a node standing under load (`ServerLimits`); seconds unless said otherwise.
KEEP_ALIVE_S = 65.0  # longer than clients' idle expiry (httpx: 5 s)
HEADER_TIMEOUT_S = 10.0
LIMIT_CONCURRENCY = 4096  # connections or requests in progress, per participant
BACKLOG = 2048
DRAIN_S = 30.0
