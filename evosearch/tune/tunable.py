"""What ``evosearch tune`` can tune, by name (a module of its own, so that the command line can
offer the names without loading torch)."""

TUNABLE = ("lr", "weight_decay", "betas")
