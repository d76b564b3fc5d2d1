"""priorauth: an explainable prior-authorization decision engine for payer drug policies.

>>> import priorauth
>>> determination = priorauth.evaluate({"request_id": "PA-1", "service": {"code": "J9999"}})
>>> determination.outcome
'pended'
"""

from priorauth._version import __version__
from priorauth.catalog import PolicySet, default_policy_dir, evaluate, load_policy
from priorauth.engine.compiled import CompiledPolicy
from priorauth.engine.determination import Determination
from priorauth.engine.request import Request, parse_request
from priorauth.errors import (
    FieldProblem,
    InvalidRequest,
    PolicyError,
    PolicyIssue,
    PriorAuthError,
)
from priorauth.policy.model import Policy

__all__ = [
    "CompiledPolicy",
    "Determination",
    "FieldProblem",
    "InvalidRequest",
    "Policy",
    "PolicyError",
    "PolicyIssue",
    "PolicySet",
    "PriorAuthError",
    "Request",
    "__version__",
    "default_policy_dir",
    "evaluate",
    "load_policy",
    "parse_request",
]
