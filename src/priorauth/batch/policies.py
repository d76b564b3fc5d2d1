"""The policy set a batch decides under, described so that other processes can load it again."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from priorauth.catalog import PolicySet, default_policy_dir, load_policy, load_safety
from priorauth.policy.model import Policy
from priorauth.policy.safety_model import SafetyData

__all__ = ["PolicySource"]


@dataclass(frozen=True, slots=True)
class PolicySource:
    """A folder of policies, with some of them replaced by other files (a new version), and
    an optional gold-card exemption list. Plain strings, so a pool worker or a Spark executor
    can be handed one and load the same set (once per process)."""

    directory: str | None = None
    replacements: tuple[str, ...] = ()
    exemptions: str | None = None

    def load(self) -> PolicySet:
        """The policy set (cached per process); PolicyError when a file does not load."""
        return _load(self)


@cache
def _load(source: PolicySource) -> PolicySet:
    folder = Path(source.directory) if source.directory is not None else default_policy_dir()
    exemptions = None
    if source.exemptions is not None:
        from priorauth.batch.goldcard import load_exemptions

        exemptions = load_exemptions(source.exemptions)
    if not source.replacements:
        return PolicySet.from_directory(folder, exemptions)
    base = PolicySet.from_directory(folder)
    chosen: dict[str, Policy] = {c.policy.id: c.policy for c in base.policies}
    safety = _safety_of(base)
    for file in source.replacements:
        path = Path(file)
        policy = load_policy(path)
        chosen[policy.id] = policy
        safety.pop(policy.id, None)
        if policy.safety is not None:
            beside = path.parent / policy.safety
            safety[policy.id] = load_safety(beside if beside.exists() else folder / policy.safety)
    return PolicySet(chosen.values(), safety, exemptions=exemptions)


def _safety_of(policies: PolicySet) -> dict[str, SafetyData]:
    return {c.policy.id: c.safety for c in policies.policies if c.safety is not None}
