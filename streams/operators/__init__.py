"""Pure operators: synchronous, no Kafka, no faust, no wall clock.

Live agents and the replay runner call exactly these classes; that is what makes a backtest
decide the way live does.
"""

from streams.operators.audit import AuditChain, verify_chain
from streams.operators.control import ControlBook
from streams.operators.execution import AccountView, PaperBroker
from streams.operators.features import FeatureEngine
from streams.operators.model import OnlineClassifier
from streams.operators.monitor import Monitor
from streams.operators.risk import RiskEngine
from streams.operators.validation import Validator

__all__ = [
    "AccountView",
    "AuditChain",
    "ControlBook",
    "FeatureEngine",
    "Monitor",
    "OnlineClassifier",
    "PaperBroker",
    "RiskEngine",
    "Validator",
    "verify_chain",
]
