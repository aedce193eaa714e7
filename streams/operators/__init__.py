"""Pure operators: synchronous, no Kafka, no faust, no wall clock.

Live agents and the replay runner call exactly these classes; that is what makes a backtest
decide the way live does.
"""

from streams.operators.audit import AuditChain, verify_chain
from streams.operators.features import FeatureEngine
from streams.operators.models import ModelStage
from streams.operators.risk import RiskEngine
from streams.operators.validation import Validator

__all__ = [
    "AuditChain",
    "FeatureEngine",
    "ModelStage",
    "RiskEngine",
    "Validator",
    "verify_chain",
]
