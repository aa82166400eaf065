"""Lead scoring: rules from the config turn a lead and its engagement into points, an MQL
flag and the reasons behind them.

This package is the pure engine: `settings` validates the `[scoring]` keys,
`conditions` and `compiled` turn rules into checks, `engine.Scorer` scores (no I/O),
`amounts` reads the ranges people type. `defaults.toml` is the rule set used when the
config has none. Nothing here imports the config, the store or the CLI, or touches
files or the network (tests/test_scoring_purity.py); the `score` and `calibrate`
commands and their files are in `leadsync.calibration`.
"""

from leadsync.scoring.engine import Scorer
from leadsync.scoring.settings import ScoringSettings

__all__ = ["Scorer", "ScoringSettings"]
