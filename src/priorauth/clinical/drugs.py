"""The drug vocabulary: what a medication, an agent given alongside or an allergy is, however it
is written, and the classes it belongs to.

Data, never code: `policies/vocabulary/drugs.yaml` (classes with their sources, extra names,
topical words) and `policies/vocabulary/drug-names.json.gz` (the names of about 20,000 products,
built by scripts/build_drug_names.py from a maintained drug dictionary). `Vocabulary.identify`
reads a name (and an RxNorm code when one is given):

- the products it names: the longest names found as whole words in the text, left to right
  ("Examplumab 1000 mg/m2 BID days 1-14" names examplumab, a combination's brand name both
  of its ingredients, "agent-a/agent-b" both);
- the classes it belongs to: a class member is an ingredient word found in those product names
  or in the text, narrowed by the member's `unless` and `only_with` words; a class that is
  `systemic_only` does not count a topical form (a 2% shampoo of an azole antifungal);
- whether it was recognized at all: a text that names no product and no known code is not.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Iterable
from functools import cache, lru_cache
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from priorauth.errors import PolicyError, PolicyIssue
from priorauth.policy.staged import Report, Stages, load_text

__all__ = [
    "DrugClass",
    "Identified",
    "Member",
    "Vocabulary",
    "VocabularyData",
    "load_vocabulary",
    "mentions",
    "shipped_vocabulary",
    "words",
]

_QUOTES = re.compile(r"[’'`]")
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def words(text: str) -> list[str]:
    """A name as the vocabulary compares it: lower case, apostrophes dropped, every other
    character that is not a letter or a digit a space ("St. John's Wort" -> st johns wort)."""
    return _NOT_WORD.sub(" ", _QUOTES.sub("", text.casefold())).split()


Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$")]
Name = Annotated[str, Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Member(_Strict):
    """A class member: an ingredient, counted unless one of the `unless` words is found and, with
    `only_with`, only when one of those words is found (in the text or the products it names)."""

    ingredient: Name
    unless: list[Name] = []
    only_with: list[Name] = []


class DrugClass(_Strict):
    title: Name
    source: Name
    strength: Literal["strong", "moderate", "weak"] | None = None
    systemic_only: bool = False
    members: list[Name | Member] = Field(min_length=1)


class VocabularyData(_Strict):
    """policies/vocabulary/drugs.yaml."""

    id: Id
    version: Name
    names: dict[Name, list[Name]] = {}
    rxnorm: dict[Annotated[str, Field(pattern=r"^[0-9]{1,10}$")], list[Name]] = {}
    topical_words: list[Name] = []
    classes: dict[Id, DrugClass] = Field(min_length=1)


def _references(data: VocabularyData, add: Report) -> None:
    for class_id, drug_class in data.classes.items():
        seen: set[str] = set()
        for j, member in enumerate(drug_class.members):
            name = member if isinstance(member, str) else member.ingredient
            key = " ".join(words(name))
            if not key:
                add("PV301", ("classes", class_id, "members", j), f"{name!r} has no letters")
            elif key in seen:
                add("PV302", ("classes", class_id, "members", j), f"{name!r} is listed twice")
            seen.add(key)


def _lint(data: VocabularyData, warn: Report) -> None:
    del data, warn


VOCABULARY_STAGES = Stages(
    prefix="PV",
    model=VocabularyData,
    not_a_mapping="the drug vocabulary is a YAML mapping (id:, classes:)",
    references=_references,
    lint=_lint,
    kinds={},
)


class Identified(NamedTuple):
    """What a name (or code) was found to be."""

    products: tuple[str, ...]  # the product names it names, as the vocabulary spells them
    classes: frozenset[str]  # the class ids it belongs to
    recognized: bool
    topical: bool


_NOTHING = Identified((), frozenset(), False, False)


class _Rule(NamedTuple):
    class_id: str
    ingredient: tuple[str, ...]
    unless: tuple[tuple[str, ...], ...]
    only_with: tuple[tuple[str, ...], ...]
    systemic_only: bool


def _contains(haystack: list[str], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return any(tuple(haystack[i : i + n]) == needle for i in range(len(haystack) - n + 1))


class Vocabulary:
    """The vocabulary compiled once: a name index and the class rules."""

    def __init__(
        self,
        data: VocabularyData,
        products: list[str],
        names: dict[str, list[int]],
        version: str = "",
    ) -> None:
        self.data = data
        # What a determination records: id, version and a hash of the files it came from.
        self.version = version or f"{data.id} {data.version}"
        self._products = products
        self._names: dict[str, tuple[str, ...]] = {
            key: tuple(products[i] for i in found) for key, found in names.items()
        }
        for name, named in data.names.items():
            self._names[" ".join(words(name))] = tuple(named)
        # The longest name starting with each word, to bound the look-ups at each position.
        self._longest: dict[str, int] = {}
        for key in self._names:
            first, _, _ = key.partition(" ")
            length = key.count(" ") + 1
            if length > self._longest.get(first, 0):
                self._longest[first] = length
        self._rxnorm = {code: tuple(named) for code, named in data.rxnorm.items()}
        self._identified = lru_cache(maxsize=8192)(self._identify)
        self._topical = frozenset(" ".join(words(w)) for w in data.topical_words)
        # The class rules by the first word of their ingredient.
        self._rules: dict[str, list[_Rule]] = {}
        for class_id, drug_class in data.classes.items():
            for member in drug_class.members:
                spec = Member(ingredient=member) if isinstance(member, str) else member
                rule = _Rule(
                    class_id,
                    tuple(words(spec.ingredient)),
                    tuple(tuple(words(w)) for w in spec.unless),
                    tuple(tuple(words(w)) for w in spec.only_with),
                    drug_class.systemic_only,
                )
                self._rules.setdefault(rule.ingredient[0], []).append(rule)

    def classes(self) -> dict[str, DrugClass]:
        return self.data.classes

    def products_in(self, text: str) -> tuple[str, ...]:
        """The products named in a text: at each word the longest name starting there."""
        found: list[str] = []
        tokens = words(text)
        i = 0
        while i < len(tokens):
            longest = self._longest.get(tokens[i], 0)
            for n in range(min(longest, len(tokens) - i), 0, -1):
                named = self._names.get(" ".join(tokens[i : i + n]))
                if named is not None:
                    found.extend(p for p in named if p not in found)
                    i += n
                    break
            else:
                i += 1
        return tuple(found)

    def identify(
        self, text: str | None, code: str | None = None, system: str | None = None
    ) -> Identified:
        """What a medication's name (and code) is: the products, the classes, whether it was
        recognized and whether its form is topical. The answer depends on the vocabulary and
        the arguments alone, and practices name the same drugs over and over, so the last
        8,192 answers are kept."""
        return self._identified(text, code, system)

    def _identify(self, text: str | None, code: str | None, system: str | None) -> Identified:
        products: tuple[str, ...] = ()
        if system == "rxnorm" and code is not None:
            products = self._rxnorm.get(code, ())
        if text:
            products = tuple(dict.fromkeys((*products, *self.products_in(text))))
        if not products:
            return _NOTHING
        tokens = words(text or "")
        topical = any(" " not in w and w in tokens for w in self._topical)
        seen: list[list[str]] = [tokens, *(words(p) for p in products)]
        classes: set[str] = set()
        candidates = {w for found in seen for w in found if w in self._rules}
        for word in sorted(candidates):
            for rule in self._rules[word]:
                if rule.class_id in classes or (rule.systemic_only and topical):
                    continue
                if not any(_contains(w, rule.ingredient) for w in seen):
                    continue
                if any(_contains(w, u) for u in rule.unless for w in seen):
                    continue
                if rule.only_with and not any(
                    _contains(w, o) for o in rule.only_with for w in seen
                ):
                    continue
                classes.add(rule.class_id)
        return Identified(products, frozenset(classes), True, topical)


def load_vocabulary(folder: str | Path) -> Vocabulary:
    """The vocabulary in `folder` (drugs.yaml and drug-names.json.gz); PolicyError when
    drugs.yaml does not load. The name list is read once per process and folder."""
    folder = Path(folder)
    source = folder / "drugs.yaml"
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        issue = PolicyIssue("PV100", "read", "", None, "error", f"cannot read: {exc.strerror}")
        raise PolicyError(str(source), [issue]) from exc
    data = load_text(text, VOCABULARY_STAGES, str(source))
    products, names, digest = _names(str(folder / "drug-names.json.gz"))
    digest = hashlib.sha256(text.encode() + digest.encode()).hexdigest()[:12]
    return Vocabulary(data, products, names, f"{data.id} {data.version} sha256:{digest}")


@cache
def _names(path: str) -> tuple[list[str], dict[str, list[int]], str]:
    try:
        packed = Path(path).read_bytes()
        payload = json.loads(gzip.decompress(packed))
    except OSError as exc:
        issue = PolicyIssue(
            "PV100", "read", "", None, "error", f"cannot read the drug names: {exc.strerror or exc}"
        )
        raise PolicyError(path, [issue]) from exc
    return payload["products"], payload["names"], hashlib.sha256(packed).hexdigest()


def mentions(name: str, identified: Identified, wanted: Iterable[tuple[str, ...]]) -> bool:
    """Whether a name, or a product it was found to name, holds one of the `wanted` word
    sequences (an ingredient written with `words`)."""
    seen = [words(name), *(words(product) for product in identified.products)]
    return any(_contains(found, w) for w in wanted for found in seen)


@cache
def shipped_vocabulary(folder: str) -> Vocabulary:
    """The vocabulary in a policy folder's `vocabulary/`, read once per process and folder."""
    return load_vocabulary(Path(folder) / "vocabulary")
