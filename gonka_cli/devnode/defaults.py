"""The dev node's fixed vocabularies, with no imports: the command line reads them for
its option defaults without loading the node (or coincurve) at start-up."""

MODES = ("ta", "gateway", "retired")
SCHEMES = ("hash", "raw", "both")
FAULT_KINDS = ("429", "500", "503", "drop", "cut", "slow")
DEFAULT_MODELS = ("Qwen/QwQ-32B", "echo")
MAX_PARTICIPANTS = 64
