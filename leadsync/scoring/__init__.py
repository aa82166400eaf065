"""Lead scoring: rules from the config turn a lead and its engagement into points, an MQL
flag and the reasons behind them.

`settings` validates the `[scoring]` keys, `engine.Scorer` scores (pure, no I/O),
`offline` scores a CSV, `calibrate` compares scores with closed deals and
suggests a threshold. `defaults.toml` is the rule set used when the config has none.
"""

from leadsync.scoring.engine import Scorer
from leadsync.scoring.settings import ScoringSettings

__all__ = ["Scorer", "ScoringSettings"]
