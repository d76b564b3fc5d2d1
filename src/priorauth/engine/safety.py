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

from collections.abc import Callable, Hashable
from functools import lru_cache
from operator import attrgetter
from typing import Any, NamedTuple, TypeVar

from priorauth.clinical.codes import CodeSet
from priorauth.clinical.resistance import resistance
from priorauth.engine.determination import Alert, DosingResult, JsonScalar
from priorauth.engine.request import Request
from priorauth.engine.review import (
    GuidelineContext,
    LabelIndication,
    LabelIndicationCheck,
    ScreenNotRun,
    TherapyFinding,
)
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


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
# Results kept per memo; past this, results are built and not kept.
_MEMO_LIMIT = 4096


def _remember(kept: dict[K, V], key: K, value: V) -> V:
    """Keep an immutable result by its inputs (up to a limit) and return it.

    Requests repeat the same diagnoses, drug lists and histories, so each result is built once.
    Callers look up with `kept.get(key)` inline: no closure is built per request.
    """
    if len(kept) < _MEMO_LIMIT:
        kept[key] = value
    return value


def _value(value: float | None) -> str:
    return "unknown" if value is None else f"{value:g}"


def _num(value: float) -> str:
    """A number as a reviewer reads it: 1,200 for counts, 2.6 for ratios."""
    if value >= 1000 and float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:g}"


class Review(NamedTuple):
    """What the screens found for one request."""

    alerts: tuple[Alert, ...]
    not_run: tuple[ScreenNotRun, ...]
    label_indication: LabelIndication | None
    guideline: GuidelineContext | None
    holds: bool  # a contraindication or a dose limit: a pharmacist must look


class _Context:
    """The per-request values several screens read, worked out once."""

    __slots__ = ("allergies", "bsa", "dose_mg_per_m2", "medications", "request", "with_")

    def __init__(self, request: Request, dosing: DosingResult | None, bsa: float | None) -> None:
        self.request = request
        regimen = request.regimen
        self.with_ = _agents(regimen.with_) if regimen.with_ else _NONE
        self.bsa = bsa
        self.dose_mg_per_m2 = dosing.dose_mg_per_m2 if dosing is not None else None
        # Plain tuples, so that screens can keep their results by them (they hash in C).
        meds, allergies = request.medications, request.allergies
        self.medications = tuple((m.name, m.rxnorm) for m in meds) if meds else ()
        self.allergies = (
            tuple((a.name, a.rxnorm, a.severity) for a in allergies) if allergies else ()
        )


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

    def alert(
        self, severity: Any, template: str, facts: dict[str, JsonScalar], /, **values: str
    ) -> Alert:
        return Alert(
            code=self.id,
            severity=severity,
            message=template.format_map(values),
            source=self.source,
            facts=facts,
        )


def _labs(spec: LabScreen) -> ScreenFn:
    screen = _Screen(spec)
    agents = frozenset(name_key(a) for a in spec.given_with)
    # Reading collected_on too makes attrgetter return a tuple even for one lab.
    read = attrgetter(*(c.lab for c in spec.any), "collected_on")
    fields = tuple(f"labs.{c.lab}" for c in spec.any)
    tests = tuple((c.below, c.above) for c in spec.any)
    texts = tuple((c.label, c.unit) for c in spec.any)

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
            facts["regimen.with"] = ", ".join(ctx.request.regimen.with_)
        if collected is not None:
            facts["labs.collected_on"] = collected.isoformat()
        return screen.alert(spec.severity, spec.message, facts, found="; ".join(words))

    def run(ctx: _Context) -> ScreenResult:
        if agents and agents.isdisjoint(ctx.with_):
            return None
        *values, collected = read(ctx.request.labs)
        fired = unknown = False
        for value, (below, above) in zip(values, tests, strict=True):
            if value is None:
                unknown = True
            elif (below is not None and value < below) or (above is not None and value > above):
                fired = True
        if fired:
            return found(tuple(values), collected, ctx)
        if unknown:
            return screen.not_run(
                tuple(f for f, v in zip(fields, values, strict=True) if v is None)
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

    def run(ctx: _Context) -> ScreenResult:
        if ctx.with_:
            return None  # the bands are for the drug given alone
        labs = ctx.request.labs
        ast, alt, bili = labs.ast_uln_ratio, labs.alt_uln_ratio, labs.bilirubin_uln_ratio
        chosen = None
        for band, amino, bilirubin_limit, start_dose, max_dose in bands:
            # Kleene AND of "each value within the band's limit"; a catch-all band holds.
            truth: bool | None = True
            for value, limit in ((ast, amino), (alt, amino), (bili, bilirubin_limit)):
                if limit is None:
                    continue
                if value is None:
                    truth = None
                elif value > limit:
                    truth = False
                    break
            if truth is None:
                fields = ("labs.ast_uln_ratio", "labs.alt_uln_ratio", "labs.bilirubin_uln_ratio")
                return screen.not_run(
                    tuple(f for f, v in zip(fields, (ast, alt, bili), strict=True) if v is None)
                )
            if truth:
                chosen = (band, start_dose, max_dose)
                break
        if chosen is None:  # the bands always end with a catch-all; kept for safety
            return None
        band, start_dose, max_dose = chosen
        if band.not_recommended:
            return alert(
                spec.not_recommended_severity, spec.not_recommended_message, band, ast, alt, bili
            )
        dose = ctx.dose_mg_per_m2
        if dose is None:
            return screen.not_run(_DOSE_FIELDS)
        assert start_dose is not None
        allowed_dose = start_dose
        if ctx.request.type == "continuation" and max_dose is not None:
            allowed_dose = max_dose
        if dose <= allowed_dose:
            return None
        allowed = f"{_num(start_dose)} mg/m2" + (
            f" to start, up to {_num(max_dose)} mg/m2 in later cycles if tolerated"
            if max_dose is not None
            else ""
        )
        return alert(spec.severity, spec.message, band, ast, alt, bili, dose, allowed)

    def alert(
        severity: Any,
        message: str,
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
        return screen.alert(
            severity,
            message,
            facts,
            found=f"AST {_value(ast)}, ALT {_value(alt)}, bilirubin {_value(bili)} x ULN",
            band=band.text,
            dose="" if dose is None else f"{_num(dose)} mg/m2",
            allowed=allowed,
        )

    return run


def _allergy(spec: AllergyScreen) -> ScreenFn:
    screen = _Screen(spec)
    names = tuple(name_key(s) for s in spec.substances)
    exact = frozenset(names)
    codes = frozenset(spec.rxnorm)
    severities = frozenset(spec.allergy_severity)
    unknown = screen.not_run(("allergies",))

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
                return screen.alert(
                    spec.severity, spec.message, facts, substance=name, severity=severity
                )
        return None

    return run


def _attested(spec: AttestedScreen) -> ScreenFn:
    screen = _Screen(spec)
    field = spec.attested.removeprefix("patient.")
    found = screen.alert(spec.severity, spec.message, {spec.attested: True})
    unknown = screen.not_run((spec.attested,))

    def run(ctx: _Context) -> ScreenResult:
        patient = ctx.request.patient
        value = getattr(patient, field)
        if value is None:
            # Pregnancy and breastfeeding do not apply to a male patient.
            return None if patient.sex == "male" else unknown
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
            return screen.alert(spec.severity, spec.message, facts, drug=drug, strength=strength)
        facts["dosing.dose_mg_per_m2"] = dose
        values = {
            "drug": drug,
            "strength": strength,
            "dose": "an unknown dose" if dose is None else f"{_num(dose)} mg/m2",
            "limit": f"{_num(limit)} mg/m2",
        }
        if dose is not None and dose > limit:
            return screen.alert(spec.severity, spec.message, facts, **values)
        assert spec.otherwise_severity is not None and spec.otherwise_message is not None
        return screen.alert(spec.otherwise_severity, spec.otherwise_message, facts, **values)

    return run


def _bsa_cap(spec: BsaCapScreen) -> ScreenFn:
    screen = _Screen(spec)
    above, cap = spec.bsa_above_m2, spec.dose_cap_mg_per_m2
    cap_mg = round(cap * above, 6)
    no_bsa = screen.not_run(_BSA_FIELDS)
    no_dose = screen.not_run(_DOSE_FIELDS)

    def run(ctx: _Context) -> ScreenResult:
        bsa = ctx.bsa
        if bsa is None:
            return no_bsa
        if bsa <= above:
            return None
        regimen = ctx.request.regimen
        mg = regimen.dose
        if mg is not None and regimen.dose_unit != "mg":
            mg *= bsa
        if mg is None:
            return no_dose
        if mg <= cap_mg + 1e-9:
            return None
        facts: dict[str, JsonScalar] = {
            "dosing.bsa_m2": bsa,
            "regimen.dose": ctx.request.regimen.dose,
            "regimen.dose_unit": ctx.request.regimen.dose_unit,
        }
        return screen.alert(
            spec.severity,
            spec.message,
            facts,
            bsa=f"{_num(bsa)} m2",
            mg=f"{_num(round(mg, 1))} mg",
            cap_mg=f"{_num(cap_mg)} mg",
            dose=f"{_num(cap)} mg/m2",
        )

    return run


def _diagnosis(spec: DiagnosisScreen) -> ScreenFn:
    screen = _Screen(spec)
    codes = CodeSet(spec.codes)
    unknown = screen.not_run(("diagnoses",))

    def run(ctx: _Context) -> ScreenResult:
        diagnoses = ctx.request.diagnoses
        if not diagnoses:
            return unknown
        hit = codes.first_match(diagnoses)
        if hit is None:
            return None
        index = diagnoses.index(hit)
        return screen.alert(spec.severity, spec.message, {f"diagnoses[{index}]": hit}, code=hit)

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
        self._labels: dict[tuple[Any, ...], LabelIndication] = {}

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

    def evaluate(
        self, history: tuple[tuple[Any, ...], ...], given: tuple[str, ...]
    ) -> LabelIndication:
        """The label indication for a therapy history (plain tuples, see `_THERAPY`) and the
        agents given alongside."""
        if not history:
            known = self._no_history.get(given)
            if known is None:
                known = _remember(self._no_history, given, self._build((), _agents(given)))
            return known
        key = (history, given)
        found = self._labels.get(key)
        if found is None:
            found = _remember(self._labels, key, self._judge(history, _agents(given)))
        return found

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


class _Receptors:
    """Receptor status from explicit fields, else Z17.* codes, and the guideline summary."""

    def __init__(self, spec: Guideline) -> None:
        self._codes = {code.replace(".", ""): rc for code, rc in spec.receptor_codes.items()}
        self._summary, self._source = spec.summary, spec.source
        self._empty = GuidelineContext(None, None, None, {}, (), spec.summary, spec.source)
        self._memo: dict[tuple[Any, ...], GuidelineContext] = {}

    def evaluate(self, request: Request) -> GuidelineContext:
        disease = request.disease
        key = (request.diagnoses, disease.her2, disease.hormone_receptor, disease.triple_negative)
        found = self._memo.get(key)
        return found if found is not None else _remember(self._memo, key, self._judge(request))

    def _judge(self, request: Request) -> GuidelineContext:
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


_LABS = attrgetter(*LAB_FIELDS, "collected_on")
_THERAPY = attrgetter(
    "agent", "setting", "start_date", "end_date", "progression_date", "progressed_on_therapy"
)
_MEDICATION = attrgetter("name", "rxnorm")
_ALLERGY = attrgetter("name", "rxnorm", "severity")
# What each kind of screen reads, in the order of the keys `SafetyReviewer.review` builds: the
# screens of a group are judged together and their findings kept by the group's inputs.
_GROUP_OF: dict[type, int] = {
    LabScreen: 0,  # labs, the agents given alongside, the dose, the request type
    HepaticBandsScreen: 0,
    AllergyScreen: 1,  # allergies, medications, the dose
    InteractionScreen: 1,
    AttestedScreen: 2,  # pregnant, breastfeeding, sex
    BsaCapScreen: 3,  # body surface area, the dose as requested
    DiagnosisScreen: 4,  # diagnoses
}
Found = tuple[tuple[Alert, ...], tuple[ScreenNotRun, ...]]


class SafetyReviewer:
    """A policy's safety data prepared once; `review` screens one request.

    Screens are grouped by what they read (labs, medication and allergy lists, patient state,
    body size, diagnoses); a group's findings are kept by its inputs, and the whole review by
    all of them, so a request seen before costs one look-up and a new one re-judges only the
    groups whose inputs are new. Alerts come most serious first; screens of one severity in
    group order, within a group in file order. Kept results are immutable and bounded
    (`_MEMO_LIMIT` each); a property test checks they equal freshly computed ones.
    """

    def __init__(self, data: SafetyData | None) -> None:
        self.data = data
        self._groups: list[tuple[tuple[ScreenFn, ...], dict[Hashable, Found]]] = []
        self._label: _LabelIndications | None = None
        self._receptors: _Receptors | None = None
        if data is not None:
            by_group: list[list[ScreenFn]] = [[] for _ in range(5)]
            for spec in data.screens:
                by_group[_GROUP_OF[type(spec)]].append(_compile_screen(spec, data))
            self._groups = [(tuple(screens), {}) for screens in by_group]
            if data.resistance is not None:
                self._label = _LabelIndications(data.resistance)
            if data.guideline is not None:
                self._receptors = _Receptors(data.guideline)
        self._nothing = Review((), (), None, None, False)
        self._reviews: dict[Hashable, Review] = {}

    def review(self, request: Request, dosing: DosingResult | None, bsa: float | None) -> Review:
        """Screen one request. `dosing` and `bsa` are the dosing step's results (or None)."""
        if self.data is None:
            return self._nothing
        dose = dosing.dose_mg_per_m2 if dosing is not None else None
        alerts: tuple[Alert, ...] = ()
        not_run: tuple[ScreenNotRun, ...] = ()
        ctx: _Context | None = None
        regimen, patient = request.regimen, request.patient
        allergies, medications = request.allergies, request.medications
        # Plain values and tuples: they hash in C (the request's models would not).
        keys: tuple[Hashable, ...] = (
            (_LABS(request.labs), regimen.with_, dose, request.type),
            (
                tuple(map(_ALLERGY, allergies)) if allergies else (),
                tuple(map(_MEDICATION, medications)) if medications else (),
                dose,
            ),
            (patient.pregnant, patient.breastfeeding, patient.sex),
            (bsa, regimen.dose, regimen.dose_unit),
            request.diagnoses,
        )
        therapies, disease = request.prior_therapies, request.disease
        history = tuple(map(_THERAPY, therapies)) if therapies else ()
        # Everything the review reads: a request seen before (resubmitted, re-evaluated) is
        # answered with one look-up.
        whole = (keys, history, disease.her2, disease.hormone_receptor, disease.triple_negative)
        seen = self._reviews.get(whole)
        if seen is not None:
            return seen
        for key, (screens, kept) in zip(keys, self._groups, strict=True):
            if not screens:
                continue
            found = kept.get(key)
            if found is None:
                ctx = ctx or _Context(request, dosing, bsa)
                found = _remember(kept, key, _judge(screens, ctx))
            if found[0]:
                alerts += found[0]
            if found[1]:
                not_run += found[1]
        holds = False
        if alerts:
            if len(alerts) > 1:
                alerts = tuple(sorted(alerts, key=_severity_rank))
            holds = alerts[0].severity in _HOLDING
        label = self._label.evaluate(history, regimen.with_) if self._label is not None else None
        context = self._receptors.evaluate(request) if self._receptors is not None else None
        return _remember(self._reviews, whole, Review(alerts, not_run, label, context, holds))


def _severity_rank(alert: Alert) -> int:
    return SEVERITY_ORDER[alert.severity]


def _judge(screens: tuple[ScreenFn, ...], ctx: _Context) -> Found:
    results = [screen(ctx) for screen in screens]
    alerts = tuple(r for r in results if type(r) is Alert)
    not_run = tuple(r for r in results if type(r) is ScreenNotRun)
    return alerts, not_run
