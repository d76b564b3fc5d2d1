"""Policies loaded from files, indexed by the drugs they govern, and the library's evaluate()."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from priorauth.clinical.drugs import Vocabulary, shipped_vocabulary
from priorauth.engine.compiled import CompiledPolicy, no_policy_determination
from priorauth.engine.determination import Determination, GovernedBy
from priorauth.engine.goldcard import ExemptionList
from priorauth.engine.request import Request, Service, parse_request
from priorauth.errors import PolicyError, PolicyIssue
from priorauth.policy.loader import load_policy_text
from priorauth.policy.model import Policy
from priorauth.policy.safety_loader import load_safety_text
from priorauth.policy.safety_model import SafetyData

__all__ = [
    "PolicySet",
    "default_policy_dir",
    "default_vocabulary",
    "evaluate",
    "load_policy",
    "load_safety",
]


def default_policy_dir() -> Path:
    """The policy folder: $PRIORAUTH_POLICY_DIR, else the wheel's copy, else the source tree."""
    override = os.environ.get("PRIORAUTH_POLICY_DIR")
    if override:
        return Path(override)
    packaged = Path(__file__).parent / "_policies"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "policies"


def default_vocabulary() -> Vocabulary:
    """The drug vocabulary of the default policy folder (its `vocabulary/`), read once."""
    return shipped_vocabulary(str(default_policy_dir()))


def _read(source: Path, code: str = "PA100") -> str:
    try:
        return source.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(
            str(source),
            [PolicyIssue(code, "read", "", None, "error", f"cannot read the file: {exc.strerror}")],
        ) from exc


def load_policy(path: str | Path) -> Policy:
    """Read and check one policy file; PolicyError lists every problem with its line."""
    source = Path(path)
    return load_policy_text(_read(source), str(source))


def load_safety(path: str | Path) -> SafetyData:
    """Read and check a policy's safety data file (`*.data.yaml`); PolicyError on problems."""
    source = Path(path)
    return load_safety_text(_read(source, "PS100"), str(source))


class PolicySet:
    """Compiled policies looked up by the products they govern (HCPCS code, NDC product or
    RxNorm code); when a service's codes are only RxNorm codes no policy lists, by the drug its
    name names (the drug vocabulary finds the product in it, and one policy's drug is that
    product). An HCPCS or NDC code no policy lists is another product: it is never overruled by
    a name.

    `safety` holds the safety data of the policies that name one, by policy id (from_directory
    reads them); a policy that names safety data not given here is an error, so that its
    screens are never silently left out.

    `exemptions` (gold cards, engine.goldcard) are consulted before a request is pended.
    """

    def __init__(
        self,
        policies: Iterable[Policy],
        safety: Mapping[str, SafetyData] | None = None,
        exemptions: ExemptionList | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> None:
        self.exemptions = exemptions
        self.policies: list[CompiledPolicy] = []
        self._by_hcpcs: dict[str, CompiledPolicy] = {}
        self._by_ndc_product: dict[str, CompiledPolicy] = {}
        self._by_rxnorm: dict[str, CompiledPolicy] = {}
        # By the product a drug's generic name is (vocabulary); None where two policies share it.
        self._by_product: dict[str, CompiledPolicy | None] = {}
        self._vocabulary = vocabulary or default_vocabulary()
        safety = safety or {}
        for policy in policies:
            data = safety.get(policy.id)
            if policy.safety is not None and data is None:
                raise PolicyError(
                    policy.id,
                    [
                        PolicyIssue(
                            "PA502",
                            "catalog",
                            "safety",
                            None,
                            "error",
                            f"the policy names safety data {policy.safety!r}, but none was "
                            "loaded (PolicySet.from_directory reads it; or pass safety=)",
                        )
                    ],
                )
            compiled = CompiledPolicy(policy, data, self._vocabulary)
            self.policies.append(compiled)
            for drug in policy.drugs:
                for code in drug.hcpcs:
                    self._claim(self._by_hcpcs, code.upper(), compiled)
                for product in drug.ndc_products:
                    self._claim(self._by_ndc_product, product, compiled)
                for code in drug.rxnorm:
                    self._claim(self._by_rxnorm, code, compiled)
                # The product the generic name leads with (a salt named after it is not one).
                for product in self._vocabulary.products_in(drug.generic_name)[:1]:
                    known = self._by_product.get(product, compiled)
                    same = known is not None and known.policy.id == compiled.policy.id
                    self._by_product[product] = compiled if same else None

    @staticmethod
    def _claim(index: dict[str, CompiledPolicy], key: str, compiled: CompiledPolicy) -> None:
        other = index.get(key)
        if other is not None and other.policy.id != compiled.policy.id:
            raise PolicyError(
                compiled.policy.id,
                [
                    PolicyIssue(
                        "PA501",
                        "catalog",
                        "drugs",
                        None,
                        "error",
                        f"drug {key} is governed by {other.policy.id} and {compiled.policy.id}",
                    )
                ],
            )
        index[key] = compiled

    @classmethod
    def from_directory(
        cls, directory: str | Path | None = None, exemptions: ExemptionList | None = None
    ) -> PolicySet:
        """Every `*.yaml` policy in a directory (default: the shipped policies).

        Files ending in `.data.yaml` hold data a policy refers to (its `safety:` file) and are
        read for the policy that names them.
        """
        folder = Path(directory) if directory is not None else default_policy_dir()
        files = sorted(p for p in folder.glob("*.yaml") if not p.name.endswith(".data.yaml"))
        if not files:
            raise PolicyError(
                str(folder),
                [PolicyIssue("PA100", "read", "", None, "error", "no *.yaml policy files here")],
            )
        policies = [load_policy(p) for p in files]
        safety = {
            policy.id: load_safety(folder / policy.safety)
            for policy in policies
            if policy.safety is not None
        }
        own = (folder / "vocabulary").is_dir()
        vocabulary = shipped_vocabulary(str(folder)) if own else default_vocabulary()
        return cls(policies, safety, exemptions, vocabulary)

    def find(self, service: Service) -> CompiledPolicy | None:
        """The policy that governs the requested service (by its codes, in order, else by its
        name as the class says), or None."""
        return self.governing(service)[0]

    def governing(self, service: Service) -> tuple[CompiledPolicy | None, GovernedBy | None]:
        """The policy that governs the service, and how it was found when not by a code."""
        found = self._by_code(service)
        if found is not None:
            return found, None
        if not service.name or any(c.system in ("hcpcs", "ndc") for c in service.codes):
            return None, None
        governed = [
            (product, self._by_product[product])
            for product in self._vocabulary.products_in(service.name)
            if product in self._by_product
        ]
        owners = {compiled.policy.id if compiled else None for _, compiled in governed}
        if len(owners) != 1 or None in owners:
            # No policy's drug named, or two policies' (or a drug two policies share).
            return None, None
        product, compiled = governed[0]
        assert compiled is not None
        return compiled, GovernedBy("service.name", service.name, product)

    def _by_code(self, service: Service) -> CompiledPolicy | None:
        for coding in service.codes:
            found = None
            if coding.system == "hcpcs":
                found = self._by_hcpcs.get(coding.code)
            elif coding.system == "ndc":
                # The request model keeps an NDC in its 5-4-2 form, so its first ten characters
                # are the labeler and product.
                found = self._by_ndc_product.get(coding.code[:10])
            elif coding.system == "rxnorm":
                found = self._by_rxnorm.get(coding.code)
            if found is not None:
                return found
        return None

    def get(self, policy_id: str) -> CompiledPolicy | None:
        return next((p for p in self.policies if p.policy.id == policy_id), None)

    def evaluate(
        self, request: Mapping[str, Any] | Request, as_of: dt.date | None = None
    ) -> Determination:
        """Validate a request and decide it under the policy that governs its drug.

        `as_of` defaults to the day the request was received, else today. Raises InvalidRequest
        (naming each field at fault) for a request that does not fit the contract, or that
        answers a question the policy does not ask.
        """
        parsed = parse_request(request)
        if as_of is None:
            as_of = parsed.received_at.date() if parsed.received_at else dt.date.today()
        return self.decide(parsed, as_of, request if isinstance(request, Mapping) else None)

    def decide(
        self, parsed: Request, as_of: dt.date, submitted: Mapping[str, Any] | None = None
    ) -> Determination:
        """Decide an already validated request; `submitted` (the request as it came in) is what
        the determination's request hash covers, as with evaluate()."""
        compiled, governed_by = self.governing(parsed.service)
        if compiled is None:
            return no_policy_determination(parsed, as_of, submitted)
        determination = compiled.evaluate(parsed, as_of, submitted)
        if governed_by is not None:
            determination = dataclasses.replace(determination, governed_by=governed_by)
        if self.exemptions is not None and determination.outcome == "pended":
            return self.exemptions.apply(parsed, determination)
        return determination


@cache
def _shipped() -> PolicySet:
    return PolicySet.from_directory()


def evaluate(
    request: Mapping[str, Any] | Request,
    as_of: dt.date | None = None,
    policies: PolicySet | None = None,
) -> Determination:
    """Decide a prior-authorization request under the shipped policies (or `policies`).

    >>> determination = evaluate({"request_id": "PA-1", "service": {"code": "J9999"}})
    >>> determination.outcome, determination.reasons
    ('pended', ['no-policy'])
    """
    return (policies or _shipped()).evaluate(request, as_of)
