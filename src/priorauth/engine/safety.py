"""Label safety screens, the label indication and guideline context, prepared once per policy.

`SafetyReviewer(data).review(request, dosing, bsa)` runs every screen of a policy's safety data
over one request and returns the alerts (contraindications first), the screens that could not
run, the label indication and the receptor-status context. It reads only the request and the
dosing result: pure, no clock, no I/O. Everything is prepared when the policy is compiled (name
sets, thresholds, code sets, the answers that do not depend on the request). Screens are judged
in groups by what they read, and a group's findings (immutable) are kept by its inputs, so a
request whose labs, drug lists, patient state, body size or diagnoses were seen before costs one
look-up for that group.

A screen gives one of three answers: a finding (an Alert), nothing to report, or "could not run"
when the request lacks what it reads. A missing lab is never a finding.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Hashable
from functools import lru_cache
from itertools import chain, count
from operator import itemgetter, le
from typing import Any, NamedTuple

from priorauth.clinical.codes import CodeSet
from priorauth.clinical.resistance import resistance
from priorauth.engine.determination import Alert, DosingResult, JsonScalar
from priorauth.engine.kept import remember
from priorauth.engine.request import Request
from priorauth.engine.review import (
    GuidelineContext,
    LabelIndication,
    LabelIndicationCheck,
    ScreenNotRun,
    TherapyFinding,
)
from priorauth.policy.safety_loader import PLACEHOLDERS
from priorauth.policy.safety_model import (
    LAB_FIELDS,
    AllergyScreen,
    AttestedScreen,
    BsaCapScreen,
    DiagnosisScreen,
    DrugEntry,
    Guideline,
    HepaticBand,
    HepaticBandsScreen,
    InteractionScreen,
    LabScreen,
    Resistance,
    SafetyData,
    Screen,
)

__all__ = ["Review", "SafetyReviewer", "name_key"]

SEVERITY_ORDER = {"contraindication": 0, "dose-limit": 1, "warning": 2}
_HOLDING = frozenset({"contraindication", "dose-limit"})
_DOSE_FIELDS = ("regimen.dose", "regimen.dose_unit", "patient.bsa_m2")
_BSA_FIELDS = ("patient.bsa_m2", "patient.height_cm", "patient.weight_kg")


@lru_cache(maxsize=8192)
def name_key(name: str) -> str:
    """A drug or substance name reduced for matching: case and spacing do not matter."""
    return " ".join(name.casefold().split())


@lru_cache(maxsize=1024)
def _agents(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(name_key(a) for a in names)


def _value(value: float | None) -> str:
    return "unknown" if value is None else _num(value, "g")


# A number's text by the number and the format: lab values and doses recur, and formatting a
# float costs several times a dict look-up. Zero is not kept: 0.0 and -0.0 are equal keys, yet
# read "0" and "-0".
_TEXTS: dict[tuple[float, str], str] = {}


def _num(value: float, form: str = "") -> str:
    """A number as a reviewer reads it: 1,200 for counts, 2.6 for ratios (`form` "g": 1200)."""
    key = (value, form)
    text = _TEXTS.get(key)
    if text is None:
        if not form and value >= 1000 and float(value).is_integer():
            text = f"{value:,.0f}"
        else:
            text = f"{value:g}"
        if value:
            remember(_TEXTS, key, text)
    return text


def _template(text: str, names: frozenset[str]) -> Callable[..., str]:
    """A message template prepared once: a function of its placeholders, by keyword, that
    returns what `text.format_map(values)` does without reading the template again (the
    literal parts are joined in one f-string). `names` are the placeholders the screen fills
    (the loader allows no other); a template with a conversion or a format spec is formatted
    as written."""
    params = sorted(names)
    parts = list(string.Formatter().parse(text))
    if any(
        conv or spec or (field is not None and field not in names) for _, field, spec, conv in parts
    ):
        return lambda **values: text.format_map(values)
    namespace: dict[str, Any] = {}
    body = ""
    for i, (literal, field, _, _) in enumerate(parts):
        if literal:
            namespace[f"_t{i}"] = literal  # the text stays data: only names go in the code
            body += f"{{_t{i}}}"
        if field is not None:
            body += f"{{{field}}}"
    used = {field for _, field, _, _ in parts if field is not None}
    # A placeholder the template does not use may be left out (as format_map allows).
    params = [p if p in used else f"{p}=None" for p in params]
    signature = f"*, {', '.join(params)}" if params else ""
    exec(f'def fill({signature}):\n    return f"{body}"\n', namespace)
    fill: Callable[..., str] = namespace["fill"]
    return fill


class Review(NamedTuple):
    """What the screens found for one request."""

    alerts: tuple[Alert, ...]
    not_run: tuple[ScreenNotRun, ...]
    label_indication: LabelIndication | None
    guideline: GuidelineContext | None
    holds: bool  # a contraindication or a dose limit: a pharmacist must look


class _Context:
    """The per-request values several screens read, worked out once (the drug lists only when
    a drug screen asks). The request's parts are read from their `__dict__` (see `_ALLERGY`)."""

    __slots__ = (
        "_allergies",
        "_medications",
        "bsa",
        "dose_mg_per_m2",
        "fields",
        "given",
        "labs",
        "regimen",
        "request",
        "with_",
    )

    def __init__(self, request: Request, dosing: DosingResult | None, bsa: float | None) -> None:
        self.request = request
        self.fields = fields = request.__dict__
        self.labs: Fields = fields["labs"].__dict__
        self.regimen: Fields = fields["regimen"].__dict__
        self.given: tuple[str, ...] = self.regimen["with_"]
        self.with_ = _agents(self.given) if self.given else _NONE
        self.bsa = bsa
        self.dose_mg_per_m2 = dosing.dose_mg_per_m2 if dosing is not None else None
        self._medications: tuple[tuple[str, str | None], ...] | None = None
        self._allergies: tuple[tuple[str, str | None, str | None], ...] | None = None

    @property
    def medications(self) -> tuple[tuple[str, str | None], ...]:
        """(name, rxnorm) of each medication: plain tuples, so that results can be kept."""
        if self._medications is None:
            self._medications = tuple(map(_NAMED, map(vars, self.fields["medications"])))
        return self._medications

    @property
    def allergies(self) -> tuple[tuple[str, str | None, str | None], ...]:
        """(name, rxnorm, severity) of each allergy."""
        if self._allergies is None:
            self._allergies = tuple(map(_ALLERGY, map(vars, self.fields["allergies"])))
        return self._allergies


_NONE: frozenset[str] = frozenset()
ScreenResult = Alert | ScreenNotRun | None
ScreenFn = Callable[[_Context], ScreenResult]


class _Screen:
    """What every compiled screen shares: its identity and how it reports."""

    __slots__ = ("_not_run", "id", "source", "title")

    def __init__(self, spec: Screen) -> None:
        self.id, self.title, self.source = spec.id, spec.title, spec.source
        self._not_run: dict[tuple[str, ...], ScreenNotRun] = {}

    def not_run(self, fields: tuple[str, ...]) -> ScreenNotRun:
        found = self._not_run.get(fields)
        if found is None:
            found = self._not_run[fields] = ScreenNotRun(self.id, self.title, fields)
        return found

    def alert(self, severity: Any, message: str, facts: dict[str, JsonScalar]) -> Alert:
        return Alert(self.id, severity, message, self.source, facts)


def _fill(spec: Screen, template: str) -> Callable[..., str]:
    """One of a screen's message templates, prepared (`_template`)."""
    return _template(template, PLACEHOLDERS[type(spec)])


def _labs(spec: LabScreen) -> ScreenFn:
    screen = _Screen(spec)
    agents = frozenset(name_key(a) for a in spec.given_with)
    # Reading collected_on too makes itemgetter return a tuple even for one lab.
    read = itemgetter(*(c.lab for c in spec.any), "collected_on")
    fields = tuple(f"labs.{c.lab}" for c in spec.any)
    tests = tuple((c.below, c.above) for c in spec.any)
    texts = tuple((c.label, c.unit) for c in spec.any)
    message = _fill(spec, spec.message)

    def found(values: tuple[float | None, ...], collected: Any, ctx: _Context) -> Alert:
        facts: dict[str, JsonScalar] = dict(zip(fields, values, strict=True))
        words: list[str] = []
        for value, (below, above), (label, unit) in zip(values, tests, texts, strict=True):
            if value is None:
                continue
            if below is not None and value < below:
                words.append(f"{label} {_num(value)}{unit}, below {_num(below)}{unit}")
            elif above is not None and value > above:
                words.append(f"{label} {_num(value)}{unit}, above {_num(above)}{unit}")
        if agents:
            facts["regimen.with"] = ", ".join(ctx.given)
        if collected is not None:
            facts["labs.collected_on"] = collected.isoformat()
        return screen.alert(spec.severity, message(found="; ".join(words)), facts)

    def run(ctx: _Context) -> ScreenResult:
        if agents and agents.isdisjoint(ctx.with_):
            return None
        values = read(ctx.labs)  # the labs, then collected_on (zip stops before it)
        fired = unknown = False
        for value, (below, above) in zip(values, tests, strict=False):
            if value is None:
                unknown = True
            elif (below is not None and value < below) or (above is not None and value > above):
                fired = True
        if fired:
            return found(values[:-1], values[-1], ctx)
        if unknown:
            return screen.not_run(
                tuple(f for f, v in zip(fields, values, strict=False) if v is None)
            )
        return None

    return run


def _hepatic(spec: HepaticBandsScreen) -> ScreenFn:
    screen = _Screen(spec)
    bands = tuple(
        (
            b,
            b.aminotransferases_at_most,
            b.bilirubin_at_most,
            b.dose_mg_per_m2,
            b.dose_max_mg_per_m2,
        )
        for b in spec.bands
    )
    # What the message says a band allows, worked out once.
    allows = {
        b.id: f"{_num(b.dose_mg_per_m2)} mg/m2"
        + (
            f" to start, up to {_num(b.dose_max_mg_per_m2)} mg/m2 in later cycles if tolerated"
            if b.dose_max_mg_per_m2 is not None
            else ""
        )
        for b in spec.bands
        if b.dose_mg_per_m2 is not None
    }
    message = _fill(spec, spec.message)
    not_recommended = _fill(spec, spec.not_recommended_message)

    def run(ctx: _Context) -> ScreenResult:
        if ctx.with_:
            return None  # the bands are for the drug given alone
        ast, alt, bili = _LIVER(ctx.labs)
        chosen = None
        for band, amino, bilirubin_limit, start_dose, max_dose in bands:
            # Kleene AND of "each value within the band's limit" (a catch-all band holds):
            # false when a given value is above its limit, else unknown when one is missing.
            if (
                amino is not None
                and ((ast is not None and ast > amino) or (alt is not None and alt > amino))
            ) or (bilirubin_limit is not None and bili is not None and bili > bilirubin_limit):
                continue
            if (amino is not None and (ast is None or alt is None)) or (
                bilirubin_limit is not None and bili is None
            ):
                fields = ("labs.ast_uln_ratio", "labs.alt_uln_ratio", "labs.bilirubin_uln_ratio")
                return screen.not_run(
                    tuple(f for f, v in zip(fields, (ast, alt, bili), strict=True) if v is None)
                )
            chosen = (band, start_dose, max_dose)
            break
        if chosen is None:  # the bands always end with a catch-all; kept for safety
            return None
        band, start_dose, max_dose = chosen
        if band.not_recommended:
            return alert(spec.not_recommended_severity, not_recommended, band, ast, alt, bili)
        dose = ctx.dose_mg_per_m2
        if dose is None:
            return screen.not_run(_DOSE_FIELDS)
        assert start_dose is not None
        allowed_dose = start_dose
        if ctx.fields["type"] == "continuation" and max_dose is not None:
            allowed_dose = max_dose
        if dose <= allowed_dose:
            return None
        return alert(spec.severity, message, band, ast, alt, bili, dose, allows[band.id])

    def alert(
        severity: Any,
        fill: Callable[..., str],
        band: HepaticBand,
        ast: float | None,
        alt: float | None,
        bili: float | None,
        dose: float | None = None,
        allowed: str = "",
    ) -> Alert:
        facts: dict[str, JsonScalar] = {
            "labs.ast_uln_ratio": ast,
            "labs.alt_uln_ratio": alt,
            "labs.bilirubin_uln_ratio": bili,
        }
        if dose is not None:
            facts["dosing.dose_mg_per_m2"] = dose
        text = fill(
            found=f"AST {_value(ast)}, ALT {_value(alt)}, bilirubin {_value(bili)} x ULN",
            band=band.text,
            dose="" if dose is None else f"{_num(dose)} mg/m2",
            allowed=allowed,
        )
        return screen.alert(severity, text, facts)

    return run


def _allergy(spec: AllergyScreen) -> ScreenFn:
    screen = _Screen(spec)
    names = tuple(name_key(s) for s in spec.substances)
    exact = frozenset(names)
    codes = frozenset(spec.rxnorm)
    severities = frozenset(spec.allergy_severity)
    unknown = screen.not_run(("allergies",))
    message = _fill(spec, spec.message)

    def run(ctx: _Context) -> ScreenResult:
        allergies = ctx.allergies
        if not allergies:
            return unknown
        for i, (name, rxnorm, given_severity) in enumerate(allergies):
            key = name_key(name)
            hit = (
                key in exact
                or (rxnorm is not None and rxnorm in codes)
                or any(n in key for n in names)
            )
            severity = given_severity or "unspecified"
            if hit and severity in severities:
                facts: dict[str, JsonScalar] = {
                    f"allergies[{i}].name": name,
                    f"allergies[{i}].severity": given_severity,
                }
                if rxnorm is not None:
                    facts[f"allergies[{i}].rxnorm"] = rxnorm
                text = message(substance=name, severity=severity)
                return screen.alert(spec.severity, text, facts)
        return None

    return run


def _attested(spec: AttestedScreen) -> ScreenFn:
    screen = _Screen(spec)
    field = spec.attested.removeprefix("patient.")
    found = screen.alert(spec.severity, _fill(spec, spec.message)(), {spec.attested: True})
    unknown = screen.not_run((spec.attested,))

    def run(ctx: _Context) -> ScreenResult:
        patient = ctx.fields["patient"].__dict__
        value = patient[field]
        if value is None:
            # Pregnancy and breastfeeding do not apply to a male patient.
            return None if patient["sex"] == "male" else unknown
        return found if value else None

    return run


def _drug_index(
    entries: list[DrugEntry], strengths: frozenset[str]
) -> tuple[dict[str, DrugEntry], dict[str, DrugEntry]]:
    by_name: dict[str, DrugEntry] = {}
    by_code: dict[str, DrugEntry] = {}
    for entry in entries:
        if entry.strength not in strengths:
            continue
        for name in (entry.name, *entry.aliases):
            by_name[name_key(name)] = entry
        for code in entry.rxnorm:
            by_code[code] = entry
    return by_name, by_code


def _interaction(spec: InteractionScreen, data: SafetyData) -> ScreenFn:
    screen = _Screen(spec)
    by_name, by_code = _drug_index(data.drug_lists[spec.drug_list].drugs, frozenset(spec.strengths))
    limit = spec.dose_above_mg_per_m2
    unknown = screen.not_run(("medications",))
    message = _fill(spec, spec.message)
    otherwise = _fill(spec, spec.otherwise_message) if spec.otherwise_message else message
    limit_text = "" if limit is None else f"{_num(limit)} mg/m2"

    def run(ctx: _Context) -> ScreenResult:
        medications = ctx.medications
        if not medications:
            return unknown
        hits: list[tuple[int, str, DrugEntry]] = []
        for i, (name, rxnorm) in enumerate(medications):
            entry = (by_code.get(rxnorm) if rxnorm else None) or by_name.get(name_key(name))
            if entry is not None:
                hits.append((i, name, entry))
        return found(hits, ctx.dose_mg_per_m2) if hits else None

    def found(hits: list[tuple[int, str, DrugEntry]], dose: float | None) -> Alert:
        facts: dict[str, JsonScalar] = {f"medications[{i}].name": name for i, name, _ in hits}
        drug = ", ".join(name for _, name, _ in hits)
        strength = hits[0][2].strength
        if limit is None:
            return screen.alert(spec.severity, message(drug=drug, strength=strength), facts)
        facts["dosing.dose_mg_per_m2"] = dose
        dose_text = "an unknown dose" if dose is None else f"{_num(dose)} mg/m2"
        if dose is not None and dose > limit:
            text = message(drug=drug, strength=strength, dose=dose_text, limit=limit_text)
            return screen.alert(spec.severity, text, facts)
        assert spec.otherwise_severity is not None and spec.otherwise_message is not None
        text = otherwise(drug=drug, strength=strength, dose=dose_text, limit=limit_text)
        return screen.alert(spec.otherwise_severity, text, facts)

    return run


def _bsa_cap(spec: BsaCapScreen) -> ScreenFn:
    screen = _Screen(spec)
    above, cap = spec.bsa_above_m2, spec.dose_cap_mg_per_m2
    cap_mg = round(cap * above, 6)
    no_bsa = screen.not_run(_BSA_FIELDS)
    no_dose = screen.not_run(_DOSE_FIELDS)
    message = _fill(spec, spec.message)
    cap_mg_text, cap_text = f"{_num(cap_mg)} mg", f"{_num(cap)} mg/m2"

    def run(ctx: _Context) -> ScreenResult:
        bsa = ctx.bsa
        if bsa is None:
            return no_bsa
        if bsa <= above:
            return None
        regimen = ctx.regimen
        mg = regimen["dose"]
        if mg is not None and regimen["dose_unit"] != "mg":
            mg *= bsa
        if mg is None:
            return no_dose
        if mg <= cap_mg + 1e-9:
            return None
        facts: dict[str, JsonScalar] = {
            "dosing.bsa_m2": bsa,
            "regimen.dose": regimen["dose"],
            "regimen.dose_unit": regimen["dose_unit"],
        }
        text = message(
            bsa=f"{_num(bsa)} m2",
            mg=f"{_num(round(mg, 1))} mg",
            cap_mg=cap_mg_text,
            dose=cap_text,
        )
        return screen.alert(spec.severity, text, facts)

    return run


def _diagnosis(spec: DiagnosisScreen) -> ScreenFn:
    screen = _Screen(spec)
    codes = CodeSet(spec.codes)
    unknown = screen.not_run(("diagnoses",))
    message = _fill(spec, spec.message)

    def run(ctx: _Context) -> ScreenResult:
        diagnoses = ctx.fields["diagnoses"]
        if not diagnoses:
            return unknown
        hit = codes.first_match(diagnoses)
        if hit is None:
            return None
        index = diagnoses.index(hit)
        return screen.alert(spec.severity, message(code=hit), {f"diagnoses[{index}]": hit})

    return run


def _compile_screen(spec: Screen, data: SafetyData) -> ScreenFn:
    if isinstance(spec, LabScreen):
        return _labs(spec)
    if isinstance(spec, HepaticBandsScreen):
        return _hepatic(spec)
    if isinstance(spec, AllergyScreen):
        return _allergy(spec)
    if isinstance(spec, AttestedScreen):
        return _attested(spec)
    if isinstance(spec, InteractionScreen):
        return _interaction(spec, data)
    if isinstance(spec, BsaCapScreen):
        return _bsa_cap(spec)
    return _diagnosis(spec)


_STATUS: dict[bool | None, Any] = {True: "met", False: "not-met", None: "unknown"}


def _all(values: list[bool | None]) -> bool | None:
    if False in values:
        return False
    return None if None in values else True


def _any(values: list[bool | None]) -> bool | None:
    if True in values:
        return True
    return None if None in values else False


# A prior therapy's fields, read from its `__dict__` (see `_ALLERGY` below).
_THERAPY = itemgetter(
    "agent", "setting", "start_date", "end_date", "progression_date", "progressed_on_therapy"
)


# One prior therapy judged: its findings, (class, resistant) for each, its serial number.
_Judged = tuple[tuple[TherapyFinding, ...], tuple[tuple[str, bool | None], ...], int]
_FINDINGS, _DECIDED, _SERIAL = itemgetter(0), itemgetter(1), itemgetter(2)


class _LabelIndications:
    """The label's resistance rules prepared once: agent look-up, windows, indications."""

    def __init__(self, spec: Resistance) -> None:
        self._class_of: dict[str, str] = {}
        for class_id, agent_class in spec.classes.items():
            for agent in agent_class.agents:
                self._class_of[name_key(agent)] = class_id
        self._windows: dict[str, dict[str | None, tuple[int, ...]]] = {}
        for class_id, agent_class in spec.classes.items():
            months = {str(k): v for k, v in agent_class.windows_months.items()}
            by_setting: dict[str | None, tuple[int, ...]] = {
                s: (months.get(s, 0),) for s in ("adjuvant", "neoadjuvant", "metastatic")
            }
            by_setting[None] = tuple(sorted({w for (w,) in by_setting.values()}))
            self._windows[class_id] = by_setting
        self._classes = tuple(spec.classes)
        self._flag_names = {c: f"{c}_resistant" for c in self._classes}
        self._indications = tuple(
            (ind, frozenset(name_key(a) for a in ind.given_with)) for ind in spec.indications
        )
        self._checks: dict[tuple[str, bool | None], LabelIndicationCheck] = {
            (ind.id, truth): LabelIndicationCheck(ind.id, ind.text, status)
            for ind in spec.indications
            for truth, status in _STATUS.items()
        }
        # Without prior therapies the answer depends only on the agents given alongside.
        self._no_history: dict[tuple[str, ...], LabelIndication] = {}
        # The serial numbers of a history's judged therapies and the agents given alongside ->
        # the indication.
        self._labels: dict[tuple[Any, ...], LabelIndication] = {}
        # For a history not seen before: by place in the list, a therapy's fields -> its
        # findings and what they decided; what the therapies decided and the agents given
        # alongside -> flags, indications and fit (its therapies are another request's).
        self._therapies: list[dict[tuple[Any, ...], _Judged]] = []
        self._serial = count()
        self._decided: dict[tuple[Any, ...], LabelIndication] = {}

    def _classify(self, agent: str) -> list[str]:
        """The classes of an agent; a combination written `doxorubicin + cyclophosphamide` (or
        with `/` or `,`) counts for each class among its parts."""
        key = name_key(agent)
        found = self._class_of.get(key)
        if found is not None:
            return [found]
        parts = key.replace("+", "/").replace(",", "/").split("/")
        classes = [self._class_of.get(p.strip()) for p in parts]
        return sorted({c for c in classes if c is not None})

    def evaluate(self, therapies: tuple[Any, ...], given: tuple[str, ...]) -> LabelIndication:
        """The label indication for a request's prior therapies and the agents given alongside.

        Each therapy is judged once by its place in the list and its fields, and kept with a
        serial number; the indication is kept by the therapies' serial numbers (small ints,
        cheap to hash) and the agents given alongside. For a history not seen before, the
        flags, indications and fit are shared with any history whose therapies decided the
        same, so it costs a few look-ups and one new LabelIndication.
        """
        if not therapies:
            known = self._no_history.get(given)
            if known is None:
                known = remember(self._no_history, given, self._build((), _agents(given)))
            return known
        by_place = self._therapies
        while len(by_place) < len(therapies):
            by_place.append({})
        judged: list[_Judged] = []
        for index, (place, therapy) in enumerate(zip(by_place, therapies, strict=False)):
            fields = _THERAPY(therapy.__dict__)
            entry = place.get(fields)
            if entry is None:
                entry = remember(place, fields, self._therapy(index, fields))
            judged.append(entry)
        key = (tuple(map(_SERIAL, judged)), given)
        known = self._labels.get(key)
        if known is not None:
            return known
        findings = tuple(chain.from_iterable(map(_FINDINGS, judged)))
        decided = (tuple(map(_DECIDED, judged)), given)
        shared = self._decided.get(decided)
        if shared is None:
            label = remember(self._decided, decided, self._build(findings, _agents(given)))
        else:
            label = LabelIndication(
                shared.flags, shared.requested, shared.fits, shared.indications, findings
            )
        return remember(self._labels, key, label)

    def _therapy(self, index: int, fields: tuple[Any, ...]) -> _Judged:
        """One therapy judged against its class's window: its findings, (class, resistant) for
        each (all the flags and indications read), and a serial number new to this table."""
        agent, setting, start, end, progression, on_therapy = fields
        found = []
        for class_id in self._classify(agent):
            windows = self._windows[class_id][setting]
            truth, detail = resistance(on_therapy, start, end, progression, windows)
            found.append(TherapyFinding(index, agent, class_id, setting, truth, detail))
        return tuple(found), tuple((f.agent_class, f.resistant) for f in found), next(self._serial)

    def judge(
        self, history: tuple[tuple[Any, ...], ...], given: tuple[str, ...]
    ) -> LabelIndication:
        """The same answer worked out afresh, nothing kept (`SafetyReviewer.reference_review`)."""
        return self._judge(history, _agents(given))

    def _judge(
        self, history: tuple[tuple[Any, ...], ...], with_: frozenset[str]
    ) -> LabelIndication:
        findings = []
        for index, (agent, setting, start, end, progression, on_therapy) in enumerate(history):
            for class_id in self._classify(agent):
                windows = self._windows[class_id][setting]
                truth, detail = resistance(on_therapy, start, end, progression, windows)
                findings.append(TherapyFinding(index, agent, class_id, setting, truth, detail))
        return self._build(tuple(findings), with_)

    def _build(
        self, findings: tuple[TherapyFinding, ...], with_: frozenset[str]
    ) -> LabelIndication:
        flags: dict[str, bool | None] = {}
        for class_id in self._classes:
            # Resistant when any therapy of the class failed; a class never given is unknown
            # (the history in a request may be incomplete).
            values = [f.resistant for f in findings if f.agent_class == class_id]
            flags[self._flag_names[class_id]] = _any(values) if values else None
        by_class = {c: flags[self._flag_names[c]] for c in self._classes}
        checks: list[LabelIndicationCheck] = []
        requested: str | None = None
        fits: str | None = None
        for indication, agents in self._indications:
            groups = [[by_class.get(term) for term in group] for group in indication.any_of]
            truth = _any([_all(g) for g in groups])
            checks.append(self._checks[(indication.id, truth)])
            matches = bool(agents & with_) if agents else not with_
            if requested is None and matches:
                requested = indication.id
                fits = indication.id if truth else None
        return LabelIndication(flags, requested, fits, tuple(checks), findings)


_RECEPTOR_FIELDS = itemgetter("her2", "hormone_receptor", "triple_negative")


class _Receptors:
    """Receptor status from explicit fields, else Z17.* codes, and the guideline summary."""

    def __init__(self, spec: Guideline) -> None:
        self._codes = {code.replace(".", ""): rc for code, rc in spec.receptor_codes.items()}
        self._summary, self._source = spec.summary, spec.source
        self._empty = GuidelineContext(None, None, None, {}, (), spec.summary, spec.source)

    def judge(self, request: Request) -> GuidelineContext:
        """The context for a request (kept by `SafetyReviewer._by_codes`)."""
        disease = request.disease
        markers: dict[str, tuple[str, str]] = {}
        for i, code in enumerate(request.diagnoses):
            found = self._codes.get(code.replace(".", ""))
            if found is not None and found.marker not in markers:
                markers[found.marker] = (found.status, f"diagnoses[{i}]={code}")
        explicit = (disease.her2, disease.hormone_receptor, disease.triple_negative)
        if not markers and explicit == (None, None, None):
            return self._empty
        evidence: dict[str, str] = {}
        conflicts: list[str] = []
        # HER2
        her2: str | None = disease.her2
        coded = markers.get("her2")
        if her2 is not None:
            evidence["her2"] = f"disease.her2={her2}"
            if coded is not None and (coded[0] == "positive") != (her2 == "positive"):
                conflicts.append(f"disease.her2 is {her2}, yet {coded[1]} says {coded[0]}")
        elif coded is not None:
            her2, evidence["her2"] = coded
        # Hormone receptor: positive when ER or PR is; negative when both are negative.
        hormone: str | None = disease.hormone_receptor
        er, pr = markers.get("er"), markers.get("pr")
        coded_hr: tuple[str, str] | None = None
        if (er and er[0] == "positive") or (pr and pr[0] == "positive"):
            source = er if er and er[0] == "positive" else pr
            assert source is not None
            coded_hr = ("positive", source[1])
        elif er and pr:
            coded_hr = ("negative", f"{er[1]}, {pr[1]}")
        if hormone is not None:
            evidence["hormone_receptor"] = f"disease.hormone_receptor={hormone}"
            if coded_hr is not None and coded_hr[0] != hormone:
                conflicts.append(
                    f"disease.hormone_receptor is {hormone}, yet {coded_hr[1]} says {coded_hr[0]}"
                )
        elif coded_hr is not None:
            hormone, evidence["hormone_receptor"] = coded_hr
        triple = disease.triple_negative
        if triple is not None:
            evidence["triple_negative"] = f"disease.triple_negative={str(triple).lower()}"
        elif hormone == "positive" or her2 == "positive":
            triple = False
            evidence["triple_negative"] = "from the receptor status"
        elif hormone == "negative" and her2 in ("negative", "low"):
            triple = True
            evidence["triple_negative"] = "from the receptor status"
        return GuidelineContext(
            her2, hormone, triple, evidence, tuple(conflicts), self._summary, self._source
        )


# What each kind of screen reads, in the order `SafetyReviewer.review` judges the groups.
_GROUP_OF: dict[type, int] = {
    LabScreen: 0,  # labs, the agents given alongside, the dose, the request type
    HepaticBandsScreen: 0,
    AllergyScreen: 1,  # allergies, medications, the dose
    InteractionScreen: 1,
    AttestedScreen: 2,  # pregnant, breastfeeding, sex
    BsaCapScreen: 3,  # body surface area, the dose as requested
    DiagnosisScreen: 4,  # diagnoses (with the guideline context: `SafetyReviewer._by_codes`)
}
Found = tuple[tuple[Alert, ...], tuple[ScreenNotRun, ...]]
Fields = dict[str, Any]
# One group of screens on one request: (request, its fields, the agents given alongside, the
# dose in mg/m2, dosing, bsa) -> its alerts and the screens that could not run, in file order.
GroupFn = Callable[
    [Request, Fields, tuple[str, ...], float | None, DosingResult | None, float | None], Found
]
# A group's run and what its first check reads, for `_all_clear` to ask the same in one go.
Group = tuple[GroupFn, dict[str, Any]]
_CLEAR: Found = ((), ())  # nothing found, every screen ran
_INF = float("inf")
# The request's parts are pydantic models, which keep their fields in `__dict__`: one look-up
# of `__dict__` and plain dict look-ups cost far less than an attribute look-up per field (a
# model's attribute goes through its class's `__getattr__` hook). The screens read them so in
# `reference_review` too (through `_Context`); it reads the prior therapies as attributes, and
# the property test holds the two to the same answers.
_ALLERGY = itemgetter("name", "rxnorm", "severity")
_NAMED = itemgetter("name", "rxnorm")
_READ_LABS = itemgetter(*LAB_FIELDS, "collected_on")
_LIVER = itemgetter("ast_uln_ratio", "alt_uln_ratio", "bilirubin_uln_ratio")


def _judge(screens: tuple[ScreenFn, ...], ctx: _Context) -> Found:
    """Every screen of a group run in full, in file order."""
    alerts: tuple[Alert, ...] = ()
    not_run: tuple[ScreenNotRun, ...] = ()
    for screen in screens:
        result = screen(ctx)
        if isinstance(result, Alert):
            alerts += (result,)
        elif result is not None:
            not_run += (result,)
    return (alerts, not_run) if alerts or not_run else _CLEAR


def _judged(
    kept: dict[Hashable, Found],
    key: Hashable,
    screens: tuple[ScreenFn, ...],
    request: Request,
    dosing: DosingResult | None,
    bsa: float | None,
) -> Found:
    """A group's screens judged in full for inputs not seen before, and kept by them."""
    found = kept.get(key)
    if found is None:
        found = remember(kept, key, _judge(screens, _Context(request, dosing, bsa)))
    return found


def _reader(fields: tuple[str, ...]) -> Callable[[Fields], tuple[Any, ...]]:
    """Read fields as a tuple, even one or none (itemgetter of one key returns the value)."""
    if not fields:
        return lambda _: ()
    if len(fields) == 1:
        field = fields[0]
        return lambda values: (values[field],)
    return itemgetter(*fields)


def _bounds(
    conditions: list[tuple[str, float | None, float | None]],
) -> tuple[Callable[[Fields], tuple[Any, ...]], tuple[float, ...], tuple[float, ...]]:
    """Lab limits that, when all hold, mean none of the screens behind them fires.

    `conditions` are (lab, lowest allowed, highest allowed). Returns a reader of those labs and
    the tightest lower and upper limit of each, so that two C-level passes check them all
    (`None not in` first: a missing lab is not within).
    """
    low: dict[str, float] = {}
    high: dict[str, float] = {}
    for lab, at_least, at_most in conditions:
        low[lab] = max(low.get(lab, -_INF), -_INF if at_least is None else at_least)
        high[lab] = min(high.get(lab, _INF), _INF if at_most is None else at_most)
    labs = tuple(lab for lab in LAB_FIELDS if lab in low)
    return _reader(labs), tuple(low[lab] for lab in labs), tuple(high[lab] for lab in labs)


def _labs_group(specs: list[Screen], screens: tuple[ScreenFn, ...], data: SafetyData) -> Group:
    """The lab screens. When every lab they read is given and inside every limit (and, for the
    drug alone, the dose within the first liver band's) none fires: nothing more is done.
    Otherwise they run in full, kept by their inputs (labs often all missing, or repeated)."""
    alone: list[tuple[str, float | None, float | None]] = []  # the drug given alone
    combined: list[tuple[str, float | None, float | None]] = []  # given with other agents
    dose_cap: float | None = _INF  # a dose at most this exceeds no first band's dose
    for spec in specs:
        if isinstance(spec, LabScreen):
            limits = [(c.lab, c.below, c.above) for c in spec.any]
            combined += limits
            if not spec.given_with:
                alone += limits
        elif isinstance(spec, HepaticBandsScreen):
            first = spec.bands[0]
            amino, bilirubin = first.aminotransferases_at_most, first.bilirubin_at_most
            alone += [
                ("ast_uln_ratio", None, amino),
                ("alt_uln_ratio", None, amino),
                ("bilirubin_uln_ratio", None, bilirubin),
            ]
            if first.dose_mg_per_m2 is None:  # not recommended even in the first band
                dose_cap = None
            elif dose_cap is not None:
                dose_cap = min(dose_cap, first.dose_mg_per_m2)
    read_alone, low_alone, high_alone = _bounds(alone)
    read_combined, low_combined, high_combined = _bounds(combined)
    # Without a liver band any dose will do; with one whose first band allows none, none will.
    any_dose = dose_cap == _INF
    kept: dict[Hashable, Found] = {}
    no_labs = (None,) * (len(LAB_FIELDS) + 1)
    # Without labs a liver band whose first band has a limit cannot be chosen (unknown).
    bands_need_labs = all(
        s.bands[0].aminotransferases_at_most is not None or s.bands[0].bilirubin_at_most is not None
        for s in specs
        if isinstance(s, HepaticBandsScreen)
    )
    without_labs: dict[Hashable, Found] = {}  # by the agents given alongside

    def run(
        request: Request,
        fields: Fields,
        with_: tuple[str, ...],
        dose: float | None,
        dosing: DosingResult | None,
        bsa: float | None,
    ) -> Found:
        values = _READ_LABS(fields["labs"].__dict__)
        if values == no_labs and bands_need_labs:
            # No lab given: every lab screen either does not apply (another regimen) or could
            # not run, whatever the dose: the answer depends on the agents alone.
            return _judged(without_labs, with_, screens, request, dosing, bsa)
        key = (values, with_, dose, fields["type"])
        return _judged(kept, key, screens, request, dosing, bsa)

    return run, {
        "read_alone": read_alone,
        "low_alone": low_alone,
        "high_alone": high_alone,
        "read_combined": read_combined,
        "low_combined": low_combined,
        "high_combined": high_combined,
        "any_dose": any_dose,
        "dose_cap": dose_cap,
    }


def _drugs_group(specs: list[Screen], screens: tuple[ScreenFn, ...], data: SafetyData) -> Group:
    """Allergies and medications. When both lists are given and no name or code in them is one
    a screen looks for, none fires (names are judged once and kept). Otherwise the screens run
    in full, kept by the two lists and the dose."""
    allergens: list[str] = []
    allergen_codes: set[str | None] = set()  # never None: a drug without a code
    listed: set[str] = set()
    listed_codes: set[str | None] = set()
    for spec in specs:
        if isinstance(spec, AllergyScreen):
            allergens += (name_key(s) for s in spec.substances)
            allergen_codes.update(spec.rxnorm)
        elif isinstance(spec, InteractionScreen):
            by_name, by_code = _drug_index(
                data.drug_lists[spec.drug_list].drugs, frozenset(spec.strengths)
            )
            listed.update(by_name)
            listed_codes.update(by_code)
    needs_allergies = any(isinstance(s, AllergyScreen) for s in specs)
    needs_medications = any(isinstance(s, InteractionScreen) for s in specs)
    neither: list[Found] = []  # the answer when neither list is given, once worked out
    # A name as given -> whether a screen may be looking for it (allergies match substrings).
    allergy_names: dict[str, bool] = {}
    medication_names: dict[str, bool] = {}
    kept: dict[Hashable, Found] = {}

    def allergen(name: str) -> bool:
        key = name_key(name)
        return remember(allergy_names, name, any(s in key for s in allergens))

    def listed_name(name: str) -> bool:
        return remember(medication_names, name, name_key(name) in listed)

    def run(
        request: Request,
        fields: Fields,
        with_: tuple[str, ...],
        dose: float | None,
        dosing: DosingResult | None,
        bsa: float | None,
    ) -> Found:
        allergies, medications = fields["allergies"], fields["medications"]
        if not allergies and not medications:
            # Neither list given: the screens could not run, whatever else the request says.
            if not neither:
                neither.append(_judge(screens, _Context(request, dosing, bsa)))
            return neither[0]
        key = (
            tuple(map(_ALLERGY, map(vars, allergies))),
            tuple(map(_NAMED, map(vars, medications))),
            dose,
        )
        return _judged(kept, key, screens, request, dosing, bsa)

    return run, {
        "needs_allergies": needs_allergies,
        "needs_medications": needs_medications,
        "allergy_names": allergy_names,
        "medication_names": medication_names,
        "allergen": allergen,
        "listed_name": listed_name,
        "allergen_codes": allergen_codes,
        "listed_codes": listed_codes,
    }


def _patient_group(specs: list[Screen], screens: tuple[ScreenFn, ...], data: SafetyData) -> Group:
    """Patient state: nothing fires when every attested field is false; the few other
    combinations of yes / no / unknown and sex are each judged once and kept."""
    attested = tuple(
        dict.fromkeys(
            s.attested.removeprefix("patient.") for s in specs if isinstance(s, AttestedScreen)
        )
    )
    read = _reader(attested)
    denied = (False,) * len(attested)
    read_all = _reader((*attested, "sex"))
    kept: dict[Hashable, Found] = {}

    def run(
        request: Request,
        fields: Fields,
        with_: tuple[str, ...],
        dose: float | None,
        dosing: DosingResult | None,
        bsa: float | None,
    ) -> Found:
        key = read_all(fields["patient"].__dict__)
        return _judged(kept, key, screens, request, dosing, bsa)

    return run, {"read": read, "denied": denied}


def _bsa_group(specs: list[Screen], screens: tuple[ScreenFn, ...], data: SafetyData) -> Group:
    """Body size: a body surface area at or below every cap's threshold fires nothing;
    otherwise the screens run in full, kept by the body surface area and the dose."""
    floor = min(s.bsa_above_m2 for s in specs if isinstance(s, BsaCapScreen))
    kept: dict[Hashable, Found] = {}

    def run(
        request: Request,
        fields: Fields,
        with_: tuple[str, ...],
        dose: float | None,
        dosing: DosingResult | None,
        bsa: float | None,
    ) -> Found:
        regimen = fields["regimen"].__dict__
        key = (bsa, regimen["dose"], regimen["dose_unit"])
        return _judged(kept, key, screens, request, dosing, bsa)

    return run, {"floor": floor}


_GROUPS = (_labs_group, _drugs_group, _patient_group, _bsa_group)
ClearFn = Callable[[Fields, tuple[str, ...], float | None, float | None], tuple[GroupFn, ...]]


def _any_listed(
    items: tuple[Any, ...],
    names: dict[str, Any],
    lookup: Callable[[str], Any],
    codes: frozenset[str] | set[str],
) -> bool:
    """Whether any medication or allergy is on a drug list, by its name (kept answers first) or
    its RxNorm code."""
    for item in items:
        name, code = _NAMED(item.__dict__)
        hit = names.get(name)
        if hit is None:
            hit = lookup(name)
        if hit or code in codes:
            return True
    return False


def _all_clear(made: dict[Any, Group]) -> ClearFn:
    """The first checks of the lab, drug, patient and body-size groups asked in one call (the
    common request passes them all). Returns the groups whose check fails, in group order: none
    when no group can find anything. `made` holds, by group maker, each group's run and what its
    check reads; a group without screens is not asked."""
    pieces = {make: found for make, (_, found) in made.items()}
    run_of = {make: (run,) for make, (run, _) in made.items()}
    labs_run, drugs_run, patient_run, body_run = (
        run_of.get(make, ()) for make in (_labs_group, _drugs_group, _patient_group, _bsa_group)
    )
    labs = pieces.get(_labs_group)
    drugs = pieces.get(_drugs_group)
    patient = pieces.get(_patient_group)
    body = pieces.get(_bsa_group)
    if labs is not None:
        read_alone, low_alone, high_alone = (
            labs[k] for k in ("read_alone", "low_alone", "high_alone")
        )
        read_combined, low_combined, high_combined = (
            labs[k] for k in ("read_combined", "low_combined", "high_combined")
        )
        any_dose, dose_cap = labs["any_dose"], labs["dose_cap"]
    if drugs is not None:
        needs_allergies, needs_medications = drugs["needs_allergies"], drugs["needs_medications"]
        allergy_names, medication_names = drugs["allergy_names"], drugs["medication_names"]
        allergen, listed_name = drugs["allergen"], drugs["listed_name"]
        allergen_codes, listed_codes = drugs["allergen_codes"], drugs["listed_codes"]
    if patient is not None:
        read_attested, denied = patient["read"], patient["denied"]
    floor = body["floor"] if body is not None else None

    def drugs_clear(allergies: tuple[Any, ...], medications: tuple[Any, ...]) -> bool:
        if (not allergies and needs_allergies) or (not medications and needs_medications):
            return False
        return not (
            _any_listed(allergies, allergy_names, allergen, allergen_codes)
            or _any_listed(medications, medication_names, listed_name, listed_codes)
        )

    def clear(
        fields: Fields, with_: tuple[str, ...], dose: float | None, bsa: float | None
    ) -> tuple[GroupFn, ...]:
        todo: tuple[GroupFn, ...] = ()
        if labs is not None:
            values = fields["labs"].__dict__
            if with_:
                values = read_combined(values)
                low, high = low_combined, high_combined
            elif any_dose or (dose is not None and dose_cap is not None and dose <= dose_cap):
                values = read_alone(values)
                low, high = low_alone, high_alone
            else:
                values = None
            if (
                values is None
                or None in values
                or not all(map(le, low, values))
                or not all(map(le, values, high))
            ):
                todo = labs_run
        if drugs is not None and not drugs_clear(fields["allergies"], fields["medications"]):
            todo += drugs_run
        if patient is not None and read_attested(fields["patient"].__dict__) != denied:
            todo += patient_run
        if floor is not None and (bsa is None or bsa > floor):
            todo += body_run
        return todo

    return clear


class SafetyReviewer:
    """A policy's safety data prepared once; `review` screens one request.

    Screens are grouped by what they read (labs, medication and allergy lists, patient state,
    body size, diagnoses). Each group first asks a cheap question that proves none of its
    screens can fire (every lab given and inside every limit, no name a screen looks for among
    the drugs, nothing attested); only when that fails are its screens run in full, and those
    findings are kept by the group's inputs, as are each prior therapy's findings, the label
    indication and the guideline context. Kept results are immutable and bounded
    (`kept.LIMIT` each). Alerts come most serious first; screens of one severity in group
    order, within a group in file order. `reference_review` runs every screen in full and keeps
    nothing: a property test checks that `review` always answers as it does.
    """

    def __init__(self, data: SafetyData | None) -> None:
        self.data = data
        self._clear: ClearFn = _all_clear({})
        self._diagnosis_screens: tuple[ScreenFn, ...] = ()
        # (diagnoses, her2, hormone receptor, triple negative) -> what the diagnosis screens
        # found and the guideline context: both read only these, and code lists repeat.
        self._codes: dict[Hashable, tuple[Found, GuidelineContext | None]] = {}
        self._screens: tuple[tuple[ScreenFn, ...], ...] = ()
        self._label: _LabelIndications | None = None
        self._receptors: _Receptors | None = None
        if data is not None:
            specs: list[list[Screen]] = [[] for _ in range(5)]
            for spec in data.screens:
                specs[_GROUP_OF[type(spec)]].append(spec)
            self._screens = tuple(
                tuple(_compile_screen(spec, data) for spec in group) for group in specs
            )
            # The diagnoses (the last group) are kept with the guideline context instead.
            made = {
                make: make(group, screens, data)
                for make, group, screens in zip(_GROUPS, specs[:4], self._screens[:4], strict=True)
                if screens
            }
            self._clear = _all_clear(made)
            self._diagnosis_screens = self._screens[4]
            if data.resistance is not None:
                self._label = _LabelIndications(data.resistance)
            if data.guideline is not None:
                self._receptors = _Receptors(data.guideline)
        self._nothing = Review((), (), None, None, False)

    def review(self, request: Request, dosing: DosingResult | None, bsa: float | None) -> Review:
        """Screen one request. `dosing` and `bsa` are the dosing step's results (or None)."""
        if self.data is None:
            return self._nothing
        fields = request.__dict__
        with_ = fields["regimen"].__dict__["with_"]
        dose = dosing.dose_mg_per_m2 if dosing is not None else None
        alerts: tuple[Alert, ...] = ()
        not_run: tuple[ScreenNotRun, ...] = ()
        for group in self._clear(fields, with_, dose, bsa):
            found = group(request, fields, with_, dose, dosing, bsa)
            if found is not _CLEAR:
                alerts += found[0]
                not_run += found[1]
        found, context = self._by_codes(request, fields)
        if found is not _CLEAR:
            alerts += found[0]
            not_run += found[1]
        holds = False
        if alerts:
            if len(alerts) > 1:
                alerts = tuple(sorted(alerts, key=_severity_rank))
            holds = alerts[0].severity in _HOLDING
        label = self._label
        # A NamedTuple is a tuple: made in C, without its Python-level __new__.
        return _new_tuple(
            Review,
            (
                alerts,
                not_run,
                label.evaluate(fields["prior_therapies"], with_) if label else None,
                context,
                holds,
            ),
        )

    def _by_codes(self, request: Request, fields: Fields) -> tuple[Found, GuidelineContext | None]:
        """The diagnosis screens' findings and the guideline context, kept by what they read."""
        key = (fields["diagnoses"], *_RECEPTOR_FIELDS(fields["disease"].__dict__))
        known = self._codes.get(key)
        if known is None:
            screens, receptors = self._diagnosis_screens, self._receptors
            found = _judge(screens, _Context(request, None, None)) if screens else _CLEAR
            known = remember(
                self._codes, key, (found, receptors.judge(request) if receptors else None)
            )
        return known

    def reference_review(
        self, request: Request, dosing: DosingResult | None, bsa: float | None
    ) -> Review:
        """What `review` answers, worked out the plain way: every screen run in full, the label
        indication and the guideline context judged afresh, nothing kept. For tests."""
        if self.data is None:
            return self._nothing
        ctx = _Context(request, dosing, bsa)
        results = [screen(ctx) for screens in self._screens for screen in screens]
        alerts = sorted((r for r in results if type(r) is Alert), key=_severity_rank)
        label = None
        if self._label is not None:
            history = tuple(
                (
                    t.agent,
                    t.setting,
                    t.start_date,
                    t.end_date,
                    t.progression_date,
                    t.progressed_on_therapy,
                )
                for t in request.prior_therapies
            )
            label = self._label.judge(history, request.regimen.with_)
        context = self._receptors.judge(request) if self._receptors is not None else None
        return Review(
            tuple(alerts),
            tuple(r for r in results if type(r) is ScreenNotRun),
            label,
            context,
            bool(alerts) and alerts[0].severity in _HOLDING,
        )


_new_tuple = tuple.__new__


def _severity_rank(alert: Alert) -> int:
    return SEVERITY_ORDER[alert.severity]
