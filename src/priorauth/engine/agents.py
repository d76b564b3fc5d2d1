"""Agent classes from a policy, prepared for matching medications and partner drugs.

A medication belongs to a class when one of its codes is the class's, or when one of the
class's agent names appears as whole words in its name ("Examplumab HCl 50 mg" is
examplumab; "examplumabol" is not), or in the name of a product the drug vocabulary finds in
it (a brand name, a combination: clinical.drugs). Case and spacing do not matter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from priorauth.clinical.drugs import Vocabulary
from priorauth.engine.request import Medication
from priorauth.policy.model import AgentClass

__all__ = ["AgentMatcher", "name_key"]


def name_key(name: str) -> str:
    """A drug name reduced for matching: case and spacing do not matter."""
    return " ".join(name.casefold().split())


class AgentMatcher:
    """The agents of one or more classes; `agent(...)` names the agent a medication is."""

    def __init__(self, classes: Iterable[AgentClass], vocabulary: Vocabulary | None = None) -> None:
        self._vocabulary = vocabulary
        names: list[str] = []
        self._codes: dict[tuple[str, str], str] = {}
        for agent_class in classes:
            names.extend(name_key(a) for a in agent_class.agents)
            for ref in agent_class.codes:
                self._codes[(ref.system, ref.code)] = f"{ref.system} {ref.code}"
        # Longest names first, so "liposomal examplumab" is found before "examplumab".
        self._names = sorted(set(names), key=len, reverse=True)
        self._pattern = (
            re.compile(r"(?<!\w)(" + "|".join(map(re.escape, self._names)) + r")(?!\w)")
            if self._names
            else None
        )

    def in_text(self, text: str) -> str | None:
        """The agent named in a free-text drug name, or in a product the vocabulary finds in
        it ("Brandname 40 mg" names the ingredient of that brand), or None."""
        if self._pattern is None:
            return None
        found = self._pattern.search(name_key(text))
        if found is not None:
            return found.group(1)
        if self._vocabulary is not None:
            for product in self._vocabulary.identify(text).products:
                found = self._pattern.search(name_key(product))
                if found is not None:
                    return found.group(1)
        return None

    def agent(self, medication: Medication) -> str | None:
        """The agent a medication is (by code first, then by name), or None."""
        if medication.code is not None and medication.system is not None:
            by_code = self._codes.get((medication.system, medication.code))
            if by_code is not None:
                return (medication.name and self.in_text(medication.name)) or by_code
        return self.in_text(medication.name) if medication.name else None
